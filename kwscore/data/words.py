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

#: Folder names in the layout that are not words.
NOISE_FOLDER = "_background_noise_"
