"""A tiny ctypes binding to espeak-ng, the offline speech synthesiser.

The ``espeakng-loader`` wheel bundles ``libespeak-ng`` and its voice data, so nothing has to be
installed on the system. We use the synchronous C API:

    espeak_Initialize(output=2 (synchronous), buflength=0, path=data_path, options=0) -> 22050
    espeak_SetSynthCallback(cb)          cb(short *wav, int numsamples, espeak_EVENT *events)
    espeak_SetVoiceByName(b"en-us+m3")   accent + voice variant
    espeak_SetParameter(id, value, 0)    rate=1 (words/min), pitch=3 (0-100), range=4 (0-100)
    espeak_Synth(text, len+1, 0, 1, 0, 0, None, None); espeak_Synchronize()

The library is not thread-safe: use one :class:`Espeak` per process and call it from one thread.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from kwscore.errors import KwsError

RATE, PITCH, RANGE = 1, 3, 4  # espeak_PARAMETER ids
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_LOCK = threading.Lock()  # one synthesis at a time in this process
_INSTANCE: Espeak | None = None


class Espeak:
    """Synthesise words to int16 numpy arrays at :attr:`sample_rate` (22050 Hz)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - it is in requirements.txt
            raise KwsError("espeakng-loader is not installed: pip install espeakng-loader") from exc
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        self.sample_rate = int(self._lib.espeak_Initialize(2, 0, data, 0))
        if self.sample_rate <= 0:
            raise KwsError("espeak-ng failed to initialise (its voice data may be missing).")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: C holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, numsamples, events) -> int:
        if numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0  # 0 = continue synthesis

    def say(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> np.ndarray:
        """Speak ``text`` with a voice like ``"en-us+m3"``. Returns int16 samples [time]."""
        with _LOCK:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise KwsError(f"espeak-ng has no voice {voice!r}")
            for param, value in ((RATE, rate), (PITCH, pitch), (RANGE, pitch_range)):
                self._lib.espeak_SetParameter(param, int(value), 0)
            self._chunks = []
            data = text.encode()
            self._lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 0, None, None)
            self._lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def engine() -> Espeak:
    """The process-wide espeak-ng engine (initialised once)."""
    global _INSTANCE
    if _INSTANCE is None:
        _INSTANCE = Espeak()
    return _INSTANCE
