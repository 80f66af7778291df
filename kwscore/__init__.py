"""kwscore: the keyword-spotting library behind KWS Studio.

Read it top to bottom like a tutorial, one module per concept:

- ``kwscore.data``      where clips come from (Speech Commands layout, synthetic speech, download)
- ``kwscore.features``  waveform -> dB Mel spectrogram, the numbers that explain it, a model's input transform
- ``kwscore.augment``   waveform effects (batched torch functions) and SpecAugment
- ``kwscore.models``    2D CNN on Mel spectrograms, M3/M5/M11/M18/M34-res on raw waveforms
- ``kwscore.training``  the generic train / test / predict loop
- ``kwscore.recipes``   a run's config (``RunConfig``) and the tuned recipes
- ``kwscore.training_data``  a run's clips in memory, cut into batches
- ``kwscore.runner``    one whole run: the epoch loop, checkpoints, the report
- ``kwscore.jobs``      background runs: one OS process per run, talking through files
- ``kwscore.cli``       the ``kwscore`` command

kwscore never imports streamlit: the dashboard is a thin view on top of it.
"""

__version__ = "0.1.0"
