"""Your own words: record takes of a word, keep the good ones, and train on them.

Takes are trimmed of leading/trailing silence, centred in one second and saved as 16 kHz WAV in
"My recordings" — a dataset in the Speech Commands layout (:mod:`kwscore.userdata`), so every page
and the Train page can use it. Saving never overwrites a take; deleting moves it to a trash folder.
"Fine-tune on my recordings" queues a short run that adapts a finished model to these takes
(:func:`kwscore.recipes.finetune_config`): your voice in about a minute.
"""

from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import clips, code_view, identity, plots, run_views, ui
from kwscore import jobs, paths, snippets
from kwscore.audio import SAMPLE_RATE
from kwscore.data.layout import word_folders
from kwscore.data.words import ALL_WORDS
from kwscore.errors import KwsError
from kwscore.inference import read_audio
from kwscore.labels import keywords_of
from kwscore.recipes import FINETUNE, finetune_config
from kwscore.runfiles import ACTIVE_STATES
from kwscore.userdata import (
    check_word,
    delete_take,
    list_takes,
    prepare_take,
    save_take,
    speaker_id,
    split_of,
)

ss = st.session_state
NEW_WORD = "➕ a new word…"
PENDING = "rec_pending"  #: the last recording, prepared, waiting for Keep / Discard
COUNTER = "rec_counter"  #: bumped to give the recorder a fresh key (an empty recorder)
MESSAGE = "rec_message"
FINETUNED = "rec_finetuned"  #: the fine-tuning run launched from this page
SHOWN = 12  #: takes listed before "more…"


def fresh_recorder() -> None:
    ss[COUNTER] = ss.get(COUNTER, 0) + 1
    ss.pop(PENDING, None)


def keep(root) -> None:
    pending = ss.get(PENDING)
    if not pending:
        return
    try:
        sound = read_audio(pending["bytes"], "take")
        take = save_take(root, pending["word"], pending["name"], sound.waveform, SAMPLE_RATE)
        ss[MESSAGE] = ("success", f"Kept take {take.number} of “{take.word}” ({split_of(take.number)} split): "
                                  f"`{take.clip_id}`.")  # fmt: skip
    except KwsError as exc:
        ss[MESSAGE] = ("error", str(exc))
    fresh_recorder()


def start_finetune(parent, root) -> None:
    try:
        config = replace(finetune_config(parent.path, root, run_views.runs_root()), owner=identity.owner())
        ss[FINETUNED] = jobs.launch(config, teacher=identity.is_teacher())
    except KwsError as exc:
        ss[MESSAGE] = ("error", str(exc))


def discard() -> None:
    ss[MESSAGE] = ("info", "Take discarded: record it again.")
    fresh_recorder()


def remove(root, clip_id: str) -> None:
    try:
        target = delete_take(root, clip_id)
        ss[MESSAGE] = ("info", f"Moved `{clip_id}` to the trash (`{target.parent.parent.name}/{target.parent.name}/"
                               f"{target.name}`): nothing is ever lost.")  # fmt: skip
    except KwsError as exc:
        ss[MESSAGE] = ("error", str(exc))


ui.count_page_run("record")
st.title("Your own words")
st.caption(
    "Record a few takes of a word — one of the dataset's or a new one — and keep the good ones. They are "
    "trimmed, centred in one second and saved as 16 kHz WAV in **My recordings**, a dataset in the Speech "
    "Commands layout: pick it in the sidebar and train on it, alone or next to the others."
)
root = paths.user_root()

left, right = st.columns([1, 1.3], gap="large")
with left:
    if "rec_name" not in ss and identity.name():  # the name given in the sidebar: the takes are yours
        ss["rec_name"] = identity.name()
    name = st.text_input("Speaker name", key="rec_name", placeholder="e.g. Ada",
                         help="Keeps your takes together as one speaker. Only an 8-digit hash of it is stored.")  # fmt: skip
    if name.strip():
        st.caption(f"Your speaker id: `{speaker_id(name)}` (the same name always gives the same id)")
    user_words = word_folders(root)
    choices = [NEW_WORD, *sorted(set(ALL_WORDS) | set(user_words))]
    if "rec_word" not in ss:
        ss["rec_word"] = "yes"
    choice = st.selectbox("Word", choices, key="rec_word", help="The 35 Speech Commands words and your own ones.")
    word = None
    if choice == NEW_WORD:
        typed = st.text_input("The new word", key="rec_new_word", placeholder="e.g. hello or lights-on")
        if typed.strip():
            try:
                word = check_word(typed)
            except KwsError as exc:
                st.error(str(exc))
    else:
        word = choice

kind, text = ss.pop(MESSAGE, (None, None))
if kind:
    getattr(st, kind)(text)

with right:
    if not name.strip() or not word:
        st.info("Type your name and choose a word, then record.")
    else:
        recording = st.audio_input(f"Record one take of “{word}”: press the microphone, say it, press stop",
                                   sample_rate=SAMPLE_RATE, key=f"rec_take_{ss.get(COUNTER, 0)}")  # fmt: skip
        if recording is not None:
            data = recording.getvalue()
            try:
                sound = read_audio(data, "the recording", max_seconds=10.0)
                clip = prepare_take(sound.waveform, SAMPLE_RATE)
            except KwsError as exc:
                st.error(str(exc))
                st.button("Record again", on_click=fresh_recorder, icon=":material/replay:", key="rec_again")
            else:
                ss[PENDING] = {"bytes": data, "word": word, "name": name}
                st.plotly_chart(
                    plots.waveform(clip, SAMPLE_RATE, title=f"Trimmed and centred: {sound.duration:.2f} s → 1 s",
                                   height=180), key="rec_preview")  # fmt: skip
                clips.play(clip, SAMPLE_RATE)
                b1, b2 = st.columns(2)
                b1.button("Keep this take", type="primary", icon=":material/check:", on_click=keep, args=(root,),
                          width="stretch", key="rec_keep")  # fmt: skip
                b2.button("Discard", icon=":material/delete:", on_click=discard, width="stretch", key="rec_discard")
        st.caption("Browsers allow the microphone only on localhost or HTTPS. Leave a little silence before and "
                   "after the word; it is trimmed away.")  # fmt: skip


def show_code(parent=None) -> None:
    """The "PyTorch code" expander: the take on screen (or the word's newest one) trimmed and centred,
    the takes as a dataset, and the fine-tuning run of ``parent``."""
    pending = ss.get(PENDING)
    newest = list_takes(root, word) if word and word in word_folders(root) else []
    take = "recording.wav" if pending else (newest[-1].path if newest else None)
    code_view.show(lambda: snippets.record_code(root, take, word or "yes", name.strip() or "Ada", parent.path if parent else None,
                                        run_views.runs_root()),
                   key="rec_code", download=(pending["bytes"], "recording.wav") if pending else None)  # fmt: skip


# -- the takes -----------------------------------------------------------------------------------------
st.subheader("Takes saved")
try:
    everything = list_takes(root) if word_folders(root) else []
except OSError as exc:
    st.error(f"Cannot read {root}: {exc}")
    everything = []
if not everything:
    st.caption(f"None yet. They will be saved under `{root}`.")
    show_code()
    st.stop()

mine = [t for t in everything if word and t.word == word]
if word and mine:
    st.markdown(f"**“{word}”**: {len(mine)} take(s)")
    cols = st.columns(4)
    for i, take in enumerate(mine[-SHOWN:][::-1]):
        with cols[i % 4].container(border=True):
            you = name.strip() and take.speaker == speaker_id(name)
            st.markdown(f"take {take.number} · {split_of(take.number)}" + (" · you" if you else f" · `{take.speaker}`"))
            st.audio(take.path.read_bytes(), format="audio/wav")
            st.button("Delete", key=f"rec_del_{take.clip_id}", icon=":material/delete:", on_click=remove,
                      args=(root, take.clip_id), help="Moves the file to the trash folder")  # fmt: skip
    if len(mine) > SHOWN:
        st.caption(f"and {len(mine) - SHOWN} older take(s).")

table = pd.DataFrame([{"word": t.word, "split": split_of(t.number)} for t in everything])
counts = table.pivot_table(index="word", columns="split", aggfunc="size", fill_value=0)
counts = counts.reindex(columns=[c for c in ("training", "validation", "testing") if c in counts.columns])
counts["total"] = counts.sum(axis=1)
c1, c2 = st.columns([1, 1.4], gap="large")
c1.dataframe(counts, width="stretch")
with c2:
    speakers = len({t.speaker for t in everything})
    st.markdown(
        f"**My recordings**: {len(everything)} takes of {counts.shape[0]} word(s) by {speakers} speaker(s), in "
        f"`{root}`.\n\nEvery 5th take of a word goes to validation and the next to testing, so five takes "
        "already give all three splits. To train on them, go to **Train**: add **My recordings** under *Mix in* "
        "(next to the sidebar's dataset) and choose *all* words; or pick **My recordings** in the sidebar to train "
        "on them alone."
    )
    ui.page_link("train.py", "Go to Train", ":material/model_training:")


# -- your voice in a minute ------------------------------------------------------------------------
def finetune_status(run_id: str, polling: bool) -> None:
    """The fine-tuning run's progress, redrawn every :data:`ui.LIVE_REFRESH` while it is queued or
    trains; once it has finished the whole page is redrawn once and the polling stops."""
    alone = ui.fragment_rerun("record", "finetune")
    path = run_views.runs_root() / run_id
    if not path.is_dir():
        st.warning(f"Run {run_id} was deleted.")
        return
    info = run_views.run_info_safe(path)
    if info.state in ACTIVE_STATES:
        fraction, eta = jobs.progress(path)
        st.progress(min(max(fraction, 0.0), 1.0), text=f"Fine-tuning: {run_views.state_text(info, run_views.queue_positions())} · "
                    f"{100 * fraction:.0f} %" + (f" · ETA {run_views.fmt_duration(eta)}" if eta is not None else ""))  # fmt: skip
    elif info.state == "succeeded":
        st.success(f"Fine-tuned in {run_views.fmt_duration(info.duration_s)}: `{run_id}`, test accuracy "
                   f"{100 * (info.test_accuracy or 0):.1f} %. Say a word to it on **Try it**.",
                   icon=":material/record_voice_over:")  # fmt: skip
        ui.page_link("try_it.py", "Go to Try it", ":material/hearing:")
    else:
        st.error(f"The fine-tuning run is {info.state}: {info.error or 'see its log on Runs'}.")
    if polling and alone and info.state not in ACTIVE_STATES:
        st.rerun()  # it just finished: redraw the page once (its new run is a model to try), stop polling


st.subheader("Your voice in a minute")


def run_words(info) -> list[str]:
    """The keywords a finished run knows (from its report)."""
    return keywords_of((run_views.run_report(info) or {}).get("labels") or [])


parents = [r for r in run_views.all_runs() if r.state == "succeeded" and (Path(r.path) / "best.pt").is_file()
           and set(run_words(r)) & set(counts.index)]  # fmt: skip
if not parents:
    st.caption("Train a model on words you recorded (on **Train**); then fine-tune it here on your takes so that it "
               "knows your voice.")  # fmt: skip
else:
    f1, f2 = st.columns([2.2, 1], vertical_alignment="bottom")
    parent_id = f1.selectbox("Model to fine-tune (a finished run)", [r.run_id for r in parents], key="rec_ft_run",
                             format_func=lambda r: run_views.run_label(next(p for p in parents if p.run_id == r)))  # fmt: skip
    parent = next(p for p in parents if p.run_id == parent_id)
    f2.button("Fine-tune on my recordings", type="primary", icon=":material/tune:", width="stretch",
              key="rec_finetune", on_click=start_finetune, args=(parent, root))  # fmt: skip
    st.caption(
        f"Starts from the model's weights and trains {FINETUNE['epochs']} short epochs at a tenth of its learning rate "
        f"on your takes of its words ({', '.join(w for w in run_words(parent) if w in counts.index)}) "
        f"plus {FINETUNE['replay']} of its own training clips per word, so that it does not forget the other voices. "
        "A new run (its parent is recorded); about a minute."
    )
    launched = ss.get(FINETUNED)
    if launched:
        launched_dir = run_views.runs_root() / launched
        polling = launched_dir.is_dir() and run_views.run_info_safe(launched_dir).state in ACTIVE_STATES
        st.fragment(finetune_status, run_every=ui.LIVE_REFRESH if polling else None)(launched, polling)
show_code(parent if parents else None)
