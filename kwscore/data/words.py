"""The vocabulary of Speech Commands v0.02."""

#: All 35 words of Speech Commands v0.02, in torchaudio's (alphabetical) order.
ALL_WORDS: tuple[str, ...] = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward",
    "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one",
    "right", "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow",
    "yes", "zero",
)  # fmt: skip

#: The 8 default commands of the lab.
COMMANDS: tuple[str, ...] = ("up", "down", "left", "right", "stop", "go", "yes", "no")

#: The 10 words of the standard Speech Commands task; with ``_unknown_`` and ``_silence_``
#: (:mod:`kwscore.labels`) they make the 12 classes published results use (``--commands 12``).
TASK_12_WORDS: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")

#: Folder names in the layout that are not words.
NOISE_FOLDER = "_background_noise_"
