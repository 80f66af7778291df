"""The bad-input corpus: hostile and careless inputs, one generator and one parametrised test per family.

Families (one module each): audio files, datasets, run folders, CLI values, queue messages.
Every case must end with a clear one-line message (no traceback text), exit code 2 for the CLI,
nothing executed, nothing of the user's lost, in <= 2 s and <= 500 MB (generous, not timing-tight).
"""
