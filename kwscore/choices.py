"""The choices a student makes, defined once: recipes (models), sample rates, augmentation.

The Spectrogram lab, the Train and Runs pages and the ``kwscore`` command line all offer these
lists; they read them from here so that a new recipe or rate shows up everywhere at once.

A *recipe* is a key of :data:`kwscore.recipes.RECIPES`: usually a model's name (``"m5"``, its tuned
recipe), or a named variant (``"m5tutorial"``: M5 exactly as the PyTorch tutorial trains it).
"""

from __future__ import annotations

from typing import Any

from kwscore.augment import PRESETS, AugmentConfig
from kwscore.errors import KwsError
from kwscore.models import MODEL_NAMES, build_model

#: Recipes in the order the pages offer them (Phase 1 first, then M5 tuned and as in the tutorial).
RECIPE_KEYS: tuple[str, ...] = ("cnn", "m5", "m5tutorial", "embed", "m3", "m11", "m18", "m34res")
RECIPE_LABELS: dict[str, str] = {
    "cnn": "CNN · Mel spectrogram (Phase 1)",
    "m5": "M5 · raw waveform, tuned (16 kHz)",
    "m5tutorial": "M5 · PyTorch tutorial (8 kHz)",
    "embed": "Pretrained embedding + head (transfer)",
    "m3": "M3 · raw waveform, shallow",
    "m11": "M11 · raw waveform, deeper",
    "m18": "M18 · raw waveform, deeper still",
    "m34res": "M34-res · raw waveform, residual",
}
#: Why each M5 recipe listens at its rate (shown next to the recipe).
RECIPE_NOTES: dict[str, str] = {
    "m5": "Tuned: listens at 16 kHz, which keeps the 4–8 kHz band of “s”, “t”, “f” (8 kHz audio stops at "
    "4 kHz); first-layer stride 16 = a 1-ms hop; OneCycle schedule, light augmentation.",
    "embed": "Transfer learning: Google's speech embedding, trained on a large amount of real speech, turns each 80 ms "
    "into 96 numbers and stays frozen; only a small head (two 1-D convs and a linear layer) learns your words. "
    "Trained on the synthetic voices alone it understands real people far better than a CNN from scratch.",
    "m5tutorial": "Exactly the PyTorch tutorial: resampled to 8 kHz, n_channel 32, stride 16 (2 ms), Adam "
    "lr 0.01 with weight decay 1e-4, StepLR (×0.1 every 20 epochs), batch 256, no augmentation.",
}
#: Sample rates a waveform model can listen at (and the Spectrogram lab can play).
SAMPLE_RATES: tuple[int, ...] = (4000, 8000, 11025, 16000)
#: First-layer strides offered for the raw-waveform models.
STRIDES: tuple[int, ...] = (2, 4, 8, 16, 32)

#: Augmentation choices besides the presets: the tuned recipe's, and the Augmentation lab's.
AUGMENT_RECIPE, AUGMENT_LAB = "recipe", "lab"


def recipe_model(key: str) -> str:
    """The model a recipe trains (``"m5tutorial"`` -> ``"m5"``)."""
    from kwscore.recipes import RECIPES

    norm = str(key).lower().replace("-", "").replace("_", "")
    if norm not in RECIPES:
        raise KwsError(f"Unknown model or recipe {key!r}. Choose one of: {', '.join(RECIPE_KEYS)}.")
    return RECIPES[norm].get("model", norm)


def recipe_label(key: str) -> str:
    return RECIPE_LABELS.get(key, key)


def rate_label(hz: int | float) -> str:
    """``16 kHz``, ``11.025 kHz``."""
    return f"{hz / 1000:g} kHz"


def augment_choices(lab_available: bool = False, none: bool = False) -> list[str]:
    """What the augmentation menus offer: the tuned recipe, the lab's recipe, the presets."""
    presets = [p for p in PRESETS if none or p != "none"]
    return [AUGMENT_RECIPE] + ([AUGMENT_LAB] if lab_available else []) + presets


#: Short names of the recipes, for narrow menus.
RECIPE_SHORT: dict[str, str] = {"cnn": "CNN", "m5": "M5 tuned", "m5tutorial": "M5 tutorial", "embed": "Embedding",
                                "m3": "M3", "m11": "M11",
                                "m18": "M18", "m34res": "M34-res"}  # fmt: skip


def augment_choice_label(choice: str, lab_name: str | None = None) -> str:
    """A menu entry: ``tuned recipe``, ``lab: custom``, ``preset: light`` (what each does is said beside)."""
    if choice == AUGMENT_RECIPE:
        return "tuned recipe"
    if choice == AUGMENT_LAB:
        return f"lab: {lab_name or 'custom'}"
    return f"preset: {choice}"


def augment_value(choice: str, lab: AugmentConfig | None = None, data: str | None = None) -> str | dict:
    """A run config's ``augment`` for a menu choice (a preset name or an AugmentConfig dict); the
    tuned recipe's is the one for ``data`` (the embedded set's when ``None``)."""
    from kwscore.recipes import recipe_augment

    if choice == AUGMENT_RECIPE:
        return recipe_augment(data)
    if choice == AUGMENT_LAB:
        if lab is None:
            raise KwsError("No recipe was made in the Augmentation lab yet: build one there first.")
        return lab.to_dict()
    if choice not in PRESETS:
        raise KwsError(f"Unknown augmentation {choice!r}. Choose one of: {', '.join(augment_choices(none=True))}.")
    return choice


def fit_stride(model: str, model_kwargs: dict[str, Any], sample_rate: int, clip_seconds: float = 1.0) -> tuple[dict, str | None]:
    """Lower a waveform model's first-layer stride until a clip at ``sample_rate`` is long enough.

    Each stride multiplies the samples the network needs (80-sample kernel, then max-pools of 4):
    M5 with stride 16 needs 6,848 samples, more than the 4,000 of one second at 4 kHz. Returns
    ``(model_kwargs, note)``: the kwargs with the largest stride that fits and a sentence saying
    why, or the kwargs unchanged and None.
    """
    if model not in MODEL_NAMES or "stride" not in model_kwargs:
        return model_kwargs, None
    have = round(clip_seconds * sample_rate)

    def needed(stride: int) -> int:
        kwargs = {**model_kwargs, "stride": stride, "sample_rate": sample_rate}
        return build_model(model, 2, **kwargs).min_samples

    stride = int(model_kwargs["stride"])
    need = needed(stride)
    if need <= have:
        return model_kwargs, None
    for smaller in sorted((s for s in STRIDES if s < stride), reverse=True):
        if needed(smaller) <= have:
            return {**model_kwargs, "stride": smaller}, (
                f"At {rate_label(sample_rate)} one second is {have:,} samples, but stride {stride} needs "
                f"{need:,} (an 80-sample kernel every {stride} samples, then the max-pools): the stride "
                f"was lowered to {smaller} ({1000 * smaller / sample_rate:g} ms hop) so that the clip fits."
            )
    return model_kwargs, None
