"""The models: a 2D CNN on Mel spectrograms and the raw-waveform M-networks of Dai et al. (2017).

Two ways to feed a keyword spotter:

- **Mel** (``"cnn"``): the waveform becomes a dB Mel spectrogram ``[batch, 1, n_mels, frames]``
  (see :mod:`kwscore.features`) and a small image CNN classifies it, like the Fashion-MNIST lab.
- **Waveform** (``"m3"``, ``"m5"``, ``"m11"``, ``"m18"``, ``"m34res"``): the network reads the samples
  ``[batch, 1, time]`` directly. Its first convolution (kernel 80 = 10 ms at 8 kHz) learns a bank
  of band-pass filters; the rest are tiny kernels of 3. Paper: W. Dai, C. Dai, S. Qu, J. Li, S. Das,
  "Very deep convolutional neural networks for raw waveforms", ICASSP 2017 (arXiv:1610.00087).
  The M-models expect 8 kHz input by default: resample the 16 kHz clips first.

**Every model returns logits** ``[batch, n_classes]`` (raw scores, no softmax). Train them with
``nn.CrossEntropyLoss`` (which applies log-softmax itself); :func:`kwscore.training.predict` turns
logits into probabilities with a softmax. (The PyTorch tutorial's M5 returns ``log_softmax`` and
trains with ``nll_loss``: the same maths, split differently.)

Pick a model by name with :func:`build_model`; :func:`describe` tells you what it expects and prints a
layer-by-layer summary before you train it.
"""

from __future__ import annotations

import functools
import numbers
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from kwscore.errors import KwsError

# --------------------------------------------------------------------------------------------
# Mel-spectrogram CNN
# --------------------------------------------------------------------------------------------


class ConvBlock2d(nn.Sequential):
    """conv 3x3 -> batch-norm -> ReLU, optionally followed by a 2x2 max-pool.

    ``separable=True`` swaps the full 3x3 convolution for a *depthwise-separable* one: a 3x3 filter
    per channel (``groups=in_channels``) then a 1x1 convolution mixing channels. About 8x fewer
    multiply-adds for the same output shape, at a small cost in accuracy.

    Shapes: ``[batch, in_channels, H, W] -> [batch, out_channels, H', W']`` with ``H' = ceil(H/2)``
    when pooling (``ceil_mode`` keeps a 1-pixel-wide input alive), else ``H' = H``.
    """

    def __init__(self, in_channels: int, out_channels: int, pool: bool, separable: bool = False):
        layers = OrderedDict()
        if separable and in_channels > 1:
            layers["depthwise"] = nn.Conv2d(
                in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False
            )
            layers["pointwise"] = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        else:  # conv bias is useless right before batch-norm (BN subtracts the mean anyway)
            layers["conv"] = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        layers["bn"] = nn.BatchNorm2d(out_channels)
        layers["relu"] = nn.ReLU(inplace=True)
        if pool:
            layers["pool"] = nn.MaxPool2d(2, ceil_mode=True)
        super().__init__(layers)


class CNN(nn.Module):
    """A small image CNN for log-Mel spectrograms (the Fashion-MNIST lab CNN, grown up a little).

    Architecture (default ``channels=(32, 64, 128, 128)``)::

        input            [batch, 1, n_mels, frames]      e.g. [B, 1, 40, 101]
        BatchNorm2d(1)   normalises the dB values (no need to know their range in advance)
        block 1          conv3x3  1->32,   BN, ReLU, maxpool 2x2  -> [B, 32, 20, 51]
        block 2          conv3x3 32->64,   BN, ReLU, maxpool 2x2  -> [B, 64, 10, 26]
        block 3          conv3x3 64->128,  BN, ReLU, maxpool 2x2  -> [B, 128, 5, 13]
        block 4          conv3x3 128->128, BN, ReLU               -> [B, 128, 5, 13]
        AdaptiveAvgPool  average over frequency and time          -> [B, 128]
        Dropout, Linear  128 -> n_classes                          -> [B, n_classes] logits

    Every block but the last halves both axes; the adaptive average pool at the end makes the
    network independent of the input size (any ``n_mels``, any clip length).

    Args:
        n_classes: number of output classes.
        channels: output channels of each conv block (one block per entry). Wider = more accurate
            and slower: on 2 CPU cores an epoch of 1435 clips took ~4 s with the default and ~2 s
            with ``(16, 32, 64, 128)``; trained 50 / 80 epochs on real Speech Commands (8 words,
            unseen speakers) they reached 95.4 % / 94.1 %.
        dropout: dropout probability before the classifier.
        separable: use depthwise-separable convolutions in blocks 2.. (fewer multiply-adds).
        n_input: input channels (1 for a single spectrogram).
    """

    name = "cnn"

    def __init__(
        self,
        n_classes: int,
        channels: Sequence[int] = (32, 64, 128, 128),
        dropout: float = 0.2,
        separable: bool = False,
        n_input: int = 1,
    ):
        super().__init__()
        _check_positive(
            n_classes=n_classes, n_input=n_input, **{f"channels[{i}]": c for i, c in enumerate(channels)}
        )
        channels = [int(c) for c in channels]
        if not channels:
            raise KwsError("CNN needs at least one conv block: pass channels=(32, 64, 128, 128).")
        if not 0.0 <= dropout < 1.0:
            raise KwsError(f"dropout must be in [0, 1), got {dropout}. Try 0.2.")
        self.config = dict(
            channels=channels, dropout=float(dropout), separable=bool(separable), n_input=int(n_input)
        )
        self.input_norm = nn.BatchNorm2d(n_input)
        self.features, in_ch = nn.Sequential(), n_input
        for i, out_ch in enumerate(channels):
            last = i == len(channels) - 1
            block = ConvBlock2d(in_ch, out_ch, pool=not last, separable=separable and i > 0)
            self.features.add_module(f"block{i + 1}", block)
            in_ch = out_ch
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(in_ch, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, n_input, n_mels, frames]`` -> logits ``[batch, n_classes]``."""
        if x.dim() != 4:
            raise KwsError(
                f"CNN expects a Mel spectrogram batch [batch, 1, n_mels, frames], got shape "
                f"{list(x.shape)}. Pass the waveform through MelFrontEnd first."
            )
        x = self.features(self.input_norm(x))  # [B, C, n_mels / 8, frames / 8]
        x = self.pool(x).flatten(1)  # [B, C]
        return self.classifier(self.dropout(x))  # [B, n_classes]


# --------------------------------------------------------------------------------------------
# Raw-waveform networks (Dai et al. 2017)
# --------------------------------------------------------------------------------------------


class _MaxPool1dFunction(torch.autograd.Function):
    """``F.max_pool1d(x, k)`` (windows of ``k`` that do not overlap) that trains faster on the CPU.

    While training, ``F.max_pool1d`` computes and stores the index of every maximum, which on the
    CPU costs several times the pooling itself. Here the forward pass runs the fast inference
    kernel and the backward pass finds the maxima again by comparison: each window's gradient
    goes to the sample equal to its maximum. Same outputs; same gradients unless a window holds
    its maximum twice (all-zero windows after a ReLU, whose gradient the ReLU zeroes anyway).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, k: int) -> torch.Tensor:
        with torch.no_grad():
            y = F.max_pool1d(x, k)
        ctx.save_for_backward(x, y)
        ctx.k = k
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        x, y = ctx.saved_tensors
        k, n = ctx.k, y.shape[-1] * ctx.k  # the last T - n samples are in no window
        windows = x[..., :n].unflatten(-1, (-1, k))  # [B, C, T / k, k]
        grad_x = (windows == y.unsqueeze(-1)).to(grad_y.dtype)  # 1 at each window's maximum
        grad_x.mul_(grad_y.unsqueeze(-1))  # in place: one big temporary instead of three
        return F.pad(grad_x.flatten(-2), (0, x.shape[-1] - n)), None


class MaxPool1d(nn.MaxPool1d):
    """``nn.MaxPool1d(k)`` that trains faster on the CPU (see :class:`_MaxPool1dFunction`).

    A drop-in replacement: same arguments, same outputs. Other settings (padding, dilation,
    ``ceil_mode``, a stride other than the kernel, indices) fall back to the original.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        simple = (isinstance(self.kernel_size, int) and self.stride == self.kernel_size
                  and self.padding == 0 and self.dilation == 1
                  and not self.ceil_mode and not self.return_indices)  # fmt: skip
        if simple and torch.is_grad_enabled() and x.requires_grad:
            return _MaxPool1dFunction.apply(x, self.kernel_size)
        return super().forward(x)


class M5(nn.Module):
    """M5 as in the PyTorch tutorial "Speech Command Classification with torchaudio".

    Five weight layers: four 1-D convolutions, each followed by batch-norm, ReLU and max-pool 4,
    then a global average pool over time and a linear classifier. With ``n_channel=32`` and
    ``stride=16`` at 8 kHz (the tutorial's settings)::

        input        [B, 1, 8000]          1 s at 8 kHz
        conv1 k80/16 1->32,  BN, ReLU      [B, 32, 496]   kernel 80 = 10 ms, hop 16 = 2 ms
        pool1 4                            [B, 32, 124]
        conv2 k3     32->32, BN, ReLU      [B, 32, 122]
        pool2 4                            [B, 32, 30]
        conv3 k3     32->64, BN, ReLU      [B, 64, 28]
        pool3 4                            [B, 64, 7]
        conv4 k3     64->64, BN, ReLU      [B, 64, 5]
        pool4 4                            [B, 64, 1]
        global average pool over time      [B, 64]
        fc1          64 -> n_classes       [B, n_classes] logits

    About 26.9 k parameters for 35 classes. The layer names match the tutorial, so its trained
    weights load here; only the final ``log_softmax`` is left out (we return logits).

    The paper's M5 (Table 1) uses ``stride=4`` and wider layers 128-128-256-512 (0.5 M
    parameters): ``M5(n_classes, stride=4, widths=(128, 128, 256, 512))``. The tutorial doubles
    the width once (n, n, 2n, 2n), which is the default here.

    Args:
        n_classes: number of output classes.
        n_channel: base width n (tutorial 32, paper 128).
        stride: stride of the first convolution (tutorial 16, paper 4).
        widths: explicit output channels of the four convolutions; overrides ``n_channel``.
        sample_rate: the rate the input is expected at (informational; used by :func:`describe`).
        n_input: input channels (1 = mono).
        normalize: divide every clip by its own RMS level first (per-utterance normalisation), so
            that a quiet and a loud recording of the same word look alike. Off in the tutorial;
            the tuned recipe turns it on (same for training and inference: it is part of the model).
        dropout: dropout probability before the classifier (0 = none, as in the tutorial).
    """

    name = "m5"

    def __init__(
        self,
        n_classes: int,
        n_channel: int = 32,
        stride: int = 16,
        widths: Sequence[int] | None = None,
        sample_rate: int = 8000,
        n_input: int = 1,
        normalize: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        _check_positive(
            n_classes=n_classes, n_channel=n_channel, stride=stride, sample_rate=sample_rate, n_input=n_input
        )
        if not 0.0 <= dropout < 1.0:
            raise KwsError(f"dropout must be in [0, 1), got {dropout}. Try 0.1.")
        if widths is None:  # the tutorial's widths: n, n, 2n, 2n
            widths = [n_channel, n_channel, 2 * n_channel, 2 * n_channel]
        if len(widths) != 4:
            raise KwsError(f"M5 has exactly four convolutions: pass four widths, got {list(widths)}.")
        _check_positive(**{f"widths[{i}]": w for i, w in enumerate(widths)})
        widths = [int(w) for w in widths]
        self.config = dict(
            n_channel=int(n_channel),
            stride=int(stride),
            widths=widths,
            sample_rate=int(sample_rate),
            n_input=int(n_input),
            normalize=bool(normalize),
            dropout=float(dropout),
        )
        self.sample_rate = int(sample_rate)
        self.normalize = bool(normalize)
        w1, w2, w3, w4 = widths
        self.conv1 = nn.Conv1d(n_input, w1, kernel_size=80, stride=stride)
        self.bn1 = nn.BatchNorm1d(w1)
        self.pool1 = MaxPool1d(4)  # nn.MaxPool1d(4), faster to train on the CPU
        self.conv2 = nn.Conv1d(w1, w2, kernel_size=3)
        self.bn2 = nn.BatchNorm1d(w2)
        self.pool2 = MaxPool1d(4)
        self.conv3 = nn.Conv1d(w2, w3, kernel_size=3)
        self.bn3 = nn.BatchNorm1d(w3)
        self.pool3 = MaxPool1d(4)
        self.conv4 = nn.Conv1d(w3, w4, kernel_size=3)
        self.bn4 = nn.BatchNorm1d(w4)
        self.pool4 = MaxPool1d(4)
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(w4, n_classes)
        self.min_samples = min_input_length(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, n_input, time]`` -> logits ``[batch, n_classes]``."""
        _check_waveform_batch(self, x)
        if self.normalize:  # each clip at RMS 1 (the clamp keeps a silent clip silent, not NaN)
            x = x / x.pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp(min=1e-3)
        # pool, then ReLU: the same numbers as the tutorial's ReLU-then-pool (max and ReLU commute),
        # with 4x fewer values through the ReLU
        x = F.relu(self.pool1(self.bn1(self.conv1(x))))
        x = F.relu(self.pool2(self.bn2(self.conv2(x))))
        x = F.relu(self.pool3(self.bn3(self.conv3(x))))
        x = F.relu(self.pool4(self.bn4(self.conv4(x))))
        x = x.mean(dim=-1)  # global average pool over time: [B, C, T] -> [B, C]
        return self.fc1(self.dropout(x))


class ConvBlock1d(nn.Sequential):
    """conv (kernel 3, "same" padding) -> batch-norm -> ReLU. ``[B, in, T] -> [B, out, T]``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            OrderedDict(
                conv=nn.Conv1d(in_channels, out_channels, 3, padding=1, bias=False),
                bn=nn.BatchNorm1d(out_channels),
                relu=nn.ReLU(inplace=True),
            )
        )


class ResBlock1d(nn.Module):
    """The residual block of M34-res: two 3-convs with a shortcut, as in ResNet-34.

    ``y = ReLU(BN(conv(ReLU(BN(conv(x))))) + shortcut(x))``. The shortcut is the identity, or a
    1x1 convolution + batch-norm when the number of channels changes.
    Shapes: ``[B, in_channels, T] -> [B, out_channels, T]``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.shortcut = nn.Identity()
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_channels, out_channels, 1, bias=False), nn.BatchNorm1d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class RawWaveformNet(nn.Module):
    """The common skeleton of M3, M11, M18 and M34-res (Table 1 of Dai et al.).

    ::

        input          [B, 1, time]                  e.g. [B, 1, 8000]: 1 s at 8 kHz
        stem           conv k80 / stride, BN, ReLU   [B, c0, time / stride]
        maxpool 4                                    [B, c0, time / (4 * stride)]
        stage 1..S     convs (or residual blocks) of kernel 3, "same" padding,
                       each stage followed by maxpool 4 except the last
        global average pool over time                [B, c_last]
        fc             c_last -> n_classes           [B, n_classes] logits

    The first two layers cut the time resolution by ``4 * stride`` (16x in the paper); after that
    each stage doubles the channels and the max-pool between stages divides the time axis by 4.
    Subclasses only choose the stages: a tuple of ``(number of blocks, channels / n_channel)``.
    """

    name = "raw"
    # (blocks, channels) per stage at base width 1; subclasses multiply by their width.
    stage_plan: tuple[tuple[int, int], ...] = ()
    residual = False

    def __init__(
        self,
        n_classes: int,
        n_channel: int,
        stride: int = 4,
        sample_rate: int = 8000,
        n_input: int = 1,
    ):
        super().__init__()
        _check_positive(
            n_classes=n_classes, n_channel=n_channel, stride=stride, sample_rate=sample_rate, n_input=n_input
        )
        self.config = dict(
            n_channel=int(n_channel), stride=int(stride), sample_rate=int(sample_rate), n_input=int(n_input)
        )
        self.sample_rate = int(sample_rate)
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv1d(n_input, n_channel, kernel_size=80, stride=stride, bias=False),
                bn=nn.BatchNorm1d(n_channel),
                relu=nn.ReLU(inplace=True),
                pool=nn.MaxPool1d(4),
            )
        )
        block_type = ResBlock1d if self.residual else ConvBlock1d
        self.stages, in_ch = nn.Sequential(), n_channel
        for i, (n_blocks, mult) in enumerate(self.stage_plan):
            stage, out_ch = nn.Sequential(), mult * n_channel
            for b in range(n_blocks):
                stage.add_module(f"block{b + 1}", block_type(in_ch if b == 0 else out_ch, out_ch))
            if i < len(self.stage_plan) - 1:
                stage.add_module("pool", nn.MaxPool1d(4))
            self.stages.add_module(f"stage{i + 1}", stage)
            in_ch = out_ch
        self.fc = nn.Linear(in_ch, n_classes)
        self.min_samples = min_input_length(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, n_input, time]`` -> logits ``[batch, n_classes]``."""
        _check_waveform_batch(self, x)
        x = self.stages(self.stem(x))  # [B, C, T']
        return self.fc(x.mean(dim=-1))  # global average pool over time, then classify


class M3(RawWaveformNet):
    """M3: conv k80 (256 ch), maxpool 4, one conv k3 (256 ch), global average pool. ~0.2 M params.

    The shallow baseline of the paper: almost all of the work is done by the learned filter bank.
    Shapes at 8 kHz, stride 4: ``[B,1,8000] -> stem [B,256,495] -> [B,256,495] -> [B, n_classes]``.
    """

    name = "m3"
    stage_plan = ((1, 1),)

    def __init__(
        self, n_classes: int, n_channel: int = 256, stride: int = 4, sample_rate: int = 8000, n_input: int = 1
    ):
        super().__init__(n_classes, n_channel, stride, sample_rate, n_input)


class M11(RawWaveformNet):
    """M11: stem (64 ch) then stages of [2, 2, 3, 2] convs with 64-128-256-512 channels. ~1.8 M params.

    Shapes at 8 kHz, stride 4: ``[B,1,8000] -> stem [B,64,495] -> [B,64,123] -> [B,128,30]
    -> [B,256,7] -> [B,512,7] -> [B, n_classes]``.
    """

    name = "m11"
    stage_plan = ((2, 1), (2, 2), (3, 4), (2, 8))

    def __init__(
        self, n_classes: int, n_channel: int = 64, stride: int = 4, sample_rate: int = 8000, n_input: int = 1
    ):
        super().__init__(n_classes, n_channel, stride, sample_rate, n_input)


class M18(RawWaveformNet):
    """M18: stem (64 ch) then four stages of 4 convs with 64-128-256-512 channels. ~3.7 M params.

    Same shapes as :class:`M11`, twice as deep.
    """

    name = "m18"
    stage_plan = ((4, 1), (4, 2), (4, 4), (4, 8))

    def __init__(
        self, n_classes: int, n_channel: int = 64, stride: int = 4, sample_rate: int = 8000, n_input: int = 1
    ):
        super().__init__(n_classes, n_channel, stride, sample_rate, n_input)


class M34Res(RawWaveformNet):
    """M34-res: stem (48 ch) then [3, 4, 6, 3] residual blocks with 48-96-192-384 channels. ~4 M params.

    The ResNet-34 layout in 1-D: 1 + 2 * (3 + 4 + 6 + 3) = 33 conv layers + the classifier.
    Each :class:`ResBlock1d` adds its input back to its output, which keeps gradients flowing
    through 34 layers.
    """

    name = "m34res"
    stage_plan = ((3, 1), (4, 2), (6, 4), (3, 8))
    residual = True

    def __init__(
        self, n_classes: int, n_channel: int = 48, stride: int = 4, sample_rate: int = 8000, n_input: int = 1
    ):
        super().__init__(n_classes, n_channel, stride, sample_rate, n_input)


# --------------------------------------------------------------------------------------------
# Small helpers shared by the models
# --------------------------------------------------------------------------------------------


def _check_positive(**values: int) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise KwsError(f"{key} must be a positive whole number, got {value!r}.")


def _time_layers(model: nn.Module) -> list[tuple[int, int, int, int]]:
    """(kernel, stride, padding, dilation) of every layer that changes the time length, in order.

    Relies on the modules being registered in the order they run, which holds for every model here
    (the 1x1 residual shortcuts keep the length, so their position does not matter).
    """
    out = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.MaxPool1d)):
            k, s, p, d = (
                v[0] if isinstance(v, tuple) else v for v in (m.kernel_size, m.stride, m.padding, m.dilation)
            )
            out.append((k, s, p, d))
    return out


def min_input_length(model: nn.Module) -> int:
    """The shortest waveform (in samples) a raw-waveform model can take: every layer keeps >= 1 step."""
    length = 1
    for k, s, p, d in reversed(_time_layers(model)):
        length = max(1, (length - 1) * s + d * (k - 1) + 1 - 2 * p)
    return length


def receptive_field(model: nn.Module) -> tuple[int, int]:
    """(receptive field, hop) in input samples of one output step of the last conv stack.

    Classic recurrence: each layer widens the field by ``(kernel - 1) * dilation * jump`` where
    ``jump`` (the hop between neighbouring outputs) multiplies by each stride.
    """
    field, jump = 1, 1
    for k, s, _p, d in _time_layers(model):
        field += (k - 1) * d * jump
        jump *= s
    return field, jump


def _check_waveform_batch(model: nn.Module, x: torch.Tensor) -> None:
    if x.dim() != 3:
        raise KwsError(
            f"{type(model).__name__} expects a waveform batch [batch, 1, time], got shape "
            f"{list(x.shape)}. Add the missing axes with x.view(batch, 1, -1)."
        )
    if x.shape[-1] < model.min_samples:
        raise KwsError(
            f"{type(model).__name__} needs at least {model.min_samples} samples "
            f"({1000 * model.min_samples / model.sample_rate:.0f} ms at {model.sample_rate} Hz), "
            f"got {x.shape[-1]}. Use longer clips or a smaller stride."
        )


# --------------------------------------------------------------------------------------------
# Transfer learning: a pretrained speech embedding (frozen) + a small head you train
# --------------------------------------------------------------------------------------------

#: Google's speech embedding, converted once by ``benchmarks/convert_speech_embedding.py``.
EMBEDDING_WEIGHTS = Path(__file__).resolve().parent / "pretrained" / "speech-embedding" / "speech_embedding.pt"

#: The embedding's frames: 25-ms Hann window in a 512-point FFT, every 10 ms at 16 kHz (also :class:`HighBands`).
_EMBEDDING_FRAMES = dict(sample_rate=16000, n_fft=512, win_length=400, hop_length=160, center=False)

#: The embedding's convolutions after the first 3x3 one: (output channels, kernel, then a max-pool?).
#: "f" = 1x3 along frequency (padded), "t" = 3x1 along time (not padded); pools are (time, frequency).
_EMBEDDING_LAYERS = (
    (24, "f", None), (24, "t", (2, 2)),
    (48, "f", None), (48, "t", None), (48, "f", None), (48, "t", (1, 2)),
    (72, "f", None), (72, "t", None), (72, "f", None), (72, "t", (2, 2)),
    (96, "f", None), (96, "t", None), (96, "f", None), (96, "t", (1, 2)),
    (96, "f", None), (96, "t", None), (96, "f", None), (96, "t", (2, 2)),
)  # fmt: skip


class SpeechEmbedding(nn.Module):
    """Google's speech embedding (Lin et al., ICASSP 2020), **pretrained on real speech and frozen**.

    Trained by Google on a large corpus of real people's speech to tell words apart, it turns every
    775 ms of audio into 96 numbers; a keyword spotter trained on top of it needs far fewer examples, and
    learns from synthetic voices what carries over to real ones. Weights: TF-Hub
    ``google/speech_embedding/1`` (Apache 2.0), as converted by openWakeWord (Apache 2.0).

    ::

        input       [B, 1, time]           16 kHz, values in [-1, 1]
        log-Mel     [B, 1, frames, 32]     25-ms Hann window in a 512-point FFT, hop 10 ms, 32 Mel
                                           bands 60-3800 Hz, dB (80 dB range per clip), / 10 + 2
        pad         [B, 1, frames, 34]     one band of zeros each side
        conv 3x3    24 channels, ReLU, batch-norm, leaky ReLU, then 19 convs (1x3 along frequency,
                    3x1 along time) with leaky ReLU and 5 max-pools: every 8 frames (80 ms) of time
                    one output, each seeing 76 frames (775 ms)
        output      [B, 96, steps]         one 96-number embedding every 80 ms

    The network is fully convolutional in time, so a whole clip goes through at once (the same numbers
    as cutting it into 76-frame windows every 8 frames, 4.6x less work). Nothing here is trained: the
    weights are buffers, not parameters, and stay out of checkpoints (the file ships with kwscore).
    """

    sample_rate = _EMBEDDING_FRAMES["sample_rate"]
    frame_hop = _EMBEDDING_FRAMES["hop_length"]  # samples between Mel frames (10 ms)
    window_frames, step_frames = 76, 8

    def __init__(self, weights: str | os.PathLike | None = None):
        super().__init__()
        import torchaudio

        self.mel = torchaudio.transforms.MelSpectrogram(
            **_EMBEDDING_FRAMES, f_min=60.0, f_max=3800.0, n_mels=32, norm="slaney", mel_scale="slaney", power=2.0
        )
        path = Path(weights) if weights is not None else EMBEDDING_WEIGHTS
        if not path.is_file():
            raise KwsError(f"The speech embedding's weights are missing ({path}); reinstall kwscore.")
        state = torch.load(path, map_location="cpu", weights_only=True)
        for name, tensor in state.items():  # 4-D kernels channels-last: the CPU convolutions run ~2x faster
            tensor = tensor.contiguous(memory_format=torch.channels_last) if tensor.dim() == 4 else tensor
            self.register_buffer(name.replace(".", "_"), tensor, persistent=False)
        widths = [getattr(self, f"conv{i}_weight").shape[0] for i in range(1, len(_EMBEDDING_LAYERS) + 1)]
        if widths != [ch for ch, _axis, _pool in _EMBEDDING_LAYERS]:
            raise KwsError(f"{path} does not hold the speech embedding's layers; reinstall kwscore.")
        self.requires_grad_(False)

    @property
    def min_samples(self) -> int:
        """The shortest input with one embedding: 76 Mel frames (775 ms)."""
        return (self.window_frames - 1) * self.frame_hop + self.mel.n_fft

    def log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, time]`` -> ``[B, 1, frames, 32]``, scaled as the embedding was trained."""
        power = self.mel(x * 32768.0).transpose(-1, -2)  # the network was trained on 16-bit sample values
        db = 10.0 * torch.log10(power.clamp(min=1e-10))
        db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - 80.0)
        return db / 10.0 + 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, time]`` at 16 kHz -> embeddings ``[B, 96, steps]``, one every 80 ms."""
        return self.from_log_mel(self.log_mel(x))

    def from_log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, frames, 32]`` (:meth:`log_mel`) -> ``[B, 96, steps]``: steps = (frames - 76) // 8 + 1."""
        x = F.pad(x, (1, 1))  # [B, 1, frames, 34]
        x = F.relu(F.conv2d(x, self.conv0_weight))
        x = x * self.bn0_scale.view(1, -1, 1, 1) + self.bn0_shift.view(1, -1, 1, 1)
        x = torch.clamp(F.leaky_relu(x, 0.2), min=-0.4)
        for i, (_ch, axis, pool) in enumerate(_EMBEDDING_LAYERS, start=1):
            w, b = getattr(self, f"conv{i}_weight"), getattr(self, f"conv{i}_bias")
            x = torch.clamp(F.leaky_relu(F.conv2d(x, w, b, padding=(0, 1) if axis == "f" else 0), 0.2), min=-0.4)
            if pool:
                x = F.max_pool2d(x, pool)
        x = F.conv2d(x, self.conv19_weight)  # [B, 96, steps, 1]
        return x.squeeze(-1)


@functools.lru_cache(maxsize=1)
def speech_embedding() -> SpeechEmbedding:
    """The frozen embedding, loaded once per process and shared by every :class:`EmbeddingKWS` (also when
    a model is only sized on the "meta" device: the embedding is real, on the CPU)."""
    with torch.device("cpu"):
        return SpeechEmbedding().eval()


class HighBands(nn.Module):
    """What the embedding cannot hear: ``n_bands`` Mel bands from 3.8 to 8 kHz (the hiss of "s" in
    "stop" and "yes"), in dB below the clip's loudest, averaged over the same 775-ms windows every 80 ms
    as the embedding's steps: ``[B, 1, time]`` -> ``[B, n_bands, steps]``. Nothing to learn."""

    def __init__(self, n_bands: int):
        super().__init__()
        import torchaudio

        self.mel = torchaudio.transforms.MelSpectrogram(**_EMBEDDING_FRAMES, f_min=3800.0, f_max=8000.0, n_mels=n_bands)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        db = 10.0 * torch.log10(self.mel(x.squeeze(1)) + 1e-10)  # [B, n_bands, frames]
        db = (db - db.amax(dim=(1, 2), keepdim=True)).clamp(min=-80.0) / 10.0
        return F.avg_pool1d(db, SpeechEmbedding.window_frames, SpeechEmbedding.step_frames)


class EmbeddingKWS(nn.Module):
    """Transfer learning: the frozen :class:`SpeechEmbedding`, then a small head that you train.

    ::

        input        [B, 1, 16000]        1 s at 16 kHz (any length)
        pad          0.25 s of silence each side, so a word at the edge still fills a window
        embedding    [B, 96, 9]           frozen: one 96-number vector every 80 ms
        + high bands [B, 96 + 8, 9]       the recipe: 8 Mel bands 3.8-8 kHz the embedding cannot hear
        conv1d k3    ->hidden, BN, ReLU   [B, hidden, 9]     hidden: 64 by default, 128 in the recipe
        conv1d k3    hidden->hidden, BN, ReLU
        max over time                     [B, hidden]  the word anywhere in the clip
        dropout, linear -> n_classes      [B, n_classes] logits

    Only the head learns (``count_parameters``: 32 k parameters at ``hidden=64``, 88 k at 128, the
    recipe); the embedding's 328 k numbers stay as Google trained them, on real voices. That is why this
    model, trained on the embedded synthetic voices only, understands real speakers far better than a
    CNN trained from scratch on the same clips (benchmarks/RESULTS.md, "sim_to_real: transfer learning").

    Args:
        n_classes: number of output classes.
        hidden: channels of the head's two convolutions.
        dropout: dropout probability before the classifier.
        pad_seconds: silence added at each end before the embedding.
        high_bands: join this many Mel bands from 3.8 to 8 kHz (:class:`HighBands`) to the embedding's
            96 numbers at each step (0 = none). The embedding hears only up to 3.8 kHz, where "stop"
            and "top" sound alike; the recipe uses 8 (real "stop" 46 -> 65 %, benchmarks/RESULTS.md).
    """

    name = "embed"
    sample_rate = 16000

    def __init__(
        self, n_classes: int, hidden: int = 64, dropout: float = 0.3, pad_seconds: float = 0.25, high_bands: int = 0
    ):
        super().__init__()
        _check_positive(n_classes=n_classes, hidden=hidden)
        if isinstance(high_bands, bool) or not isinstance(high_bands, numbers.Integral) or not 0 <= high_bands <= 32:
            raise KwsError(f"high_bands must be a whole number from 0 to 32, got {high_bands!r}. Try 8.")
        if not 0.0 <= dropout < 1.0:
            raise KwsError(f"dropout must be in [0, 1), got {dropout}. Try 0.3.")
        if not 0.0 <= pad_seconds <= 1.0:
            raise KwsError(f"pad_seconds must be between 0 and 1, got {pad_seconds}. Try 0.25.")
        self.config = dict(
            hidden=int(hidden), dropout=float(dropout), pad_seconds=float(pad_seconds), high_bands=int(high_bands)
        )
        # not registered submodules: their weights stay out of parameters(), state_dict() and checkpoints
        object.__setattr__(self, "embedding", speech_embedding())
        with torch.device("cpu"):  # real even when the model is only sized on the "meta" device
            object.__setattr__(self, "high_band", HighBands(high_bands) if high_bands else None)
        self.pad = round(pad_seconds * self.sample_rate)
        self.conv1 = nn.Conv1d(96 + high_bands, hidden, 3, padding=1)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.conv2 = nn.Conv1d(hidden, hidden, 3, padding=1)
        self.bn2 = nn.BatchNorm1d(hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, n_classes)
        self.min_samples = max(1, self.embedding.min_samples - 2 * self.pad)

    def _apply(self, fn, recurse: bool = True):  # .to(device) / .half() move the frozen embedding too
        self.embedding._apply(fn)
        if self.high_band is not None:
            self.high_band._apply(fn)
        return super()._apply(fn, recurse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, 1, time]`` at 16 kHz -> logits ``[batch, n_classes]``."""
        _check_waveform_batch(self, x)
        with torch.no_grad():
            x = F.pad(x, (self.pad, self.pad))
            e = self.embedding(x)  # [B, 96, steps]
            if self.high_band is not None:
                e = torch.cat([e, self.high_band(x)], dim=1)  # [B, 96 + high_bands, steps]
        h = F.relu(self.bn1(self.conv1(e)))
        h = F.relu(self.bn2(self.conv2(h)))
        return self.fc(self.dropout(h.amax(dim=-1)))


# --------------------------------------------------------------------------------------------
# Registry: build a model by name and describe it
# --------------------------------------------------------------------------------------------

MODEL_INFO: dict[str, dict] = {
    "cnn": dict(
        cls=CNN,
        title="CNN on log-Mel spectrograms",
        representation="mel",
        sample_rate=16000,
        input_shape=[1, 1, 40, 101],
        summary="4 conv blocks (3x3 conv, batch-norm, ReLU, max-pool), adaptive average pool, linear.",
        reference="Fashion-MNIST lab CNN adapted to n_mels x frames",
    ),
    "m3": dict(
        cls=M3,
        title="M3 (raw waveform, 3 weight layers)",
        representation="waveform",
        sample_rate=8000,
        input_shape=[1, 1, 8000],
        summary="Learned filter bank (kernel 80) + one conv + global average pool.",
        reference="Dai et al. 2017, Table 1",
    ),
    "m5": dict(
        cls=M5,
        title="M5 (raw waveform, PyTorch tutorial)",
        representation="waveform",
        sample_rate=8000,
        input_shape=[1, 1, 8000],
        summary="Kernel-80 conv then three kernel-3 convs, each with BN, ReLU and max-pool 4.",
        reference="Dai et al. 2017, Table 1; PyTorch speech command tutorial",
    ),
    "m11": dict(
        cls=M11,
        title="M11 (raw waveform, 11 weight layers)",
        representation="waveform",
        sample_rate=8000,
        input_shape=[1, 1, 8000],
        summary="Kernel-80 stem then 2-2-3-2 kernel-3 convs, 64 to 512 channels.",
        reference="Dai et al. 2017, Table 1",
    ),
    "m18": dict(
        cls=M18,
        title="M18 (raw waveform, 18 weight layers)",
        representation="waveform",
        sample_rate=8000,
        input_shape=[1, 1, 8000],
        summary="Kernel-80 stem then 4-4-4-4 kernel-3 convs, 64 to 512 channels.",
        reference="Dai et al. 2017, Table 1",
    ),
    "m34res": dict(
        cls=M34Res,
        title="M34-res (raw waveform, residual, 34 weight layers)",
        representation="waveform",
        sample_rate=8000,
        input_shape=[1, 1, 8000],
        summary="Kernel-80 stem then 3-4-6-3 residual blocks, 48 to 384 channels.",
        reference="Dai et al. 2017, Table 1",
    ),
    "embed": dict(
        cls=EmbeddingKWS,
        title="Pretrained speech embedding + small head (transfer learning)",
        representation="embedding",
        sample_rate=16000,
        input_shape=[1, 1, 16000],
        summary="Google's speech embedding (frozen, trained on real speech: 96 numbers every 80 ms), then two "
        "small 1-D convs, max over time and a linear layer: only the head learns.",
        reference="Lin et al. 2020, \"Training keyword spotters with limited and synthesized speech data\"",
    ),
}


def representation(model: str | None) -> str:
    """What model ``model`` reads: ``"mel"``, ``"waveform"`` or ``"embedding"`` (``"waveform"`` when unknown)."""
    return MODEL_INFO.get(model or "", {}).get("representation", "waveform")

MODEL_NAMES = tuple(MODEL_INFO)


def build_model(name: str, n_classes: int, **kwargs) -> nn.Module:
    """Create a model by its registry name: ``build_model("m5", 8, n_channel=32, stride=16)``.

    ``kwargs`` go to the model's constructor (see each class for the options). The model keeps
    them in ``model.config`` so a checkpoint can rebuild it.
    """
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in MODEL_INFO:
        raise KwsError(f"Unknown model {name!r}. Choose one of: {', '.join(MODEL_NAMES)}.")
    cls = MODEL_INFO[key]["cls"]
    try:
        return cls(n_classes, **kwargs)
    except TypeError as exc:  # an option this model does not have
        raise KwsError(f"Bad option for model {key!r}: {exc}. See the docstring of {cls.__name__}.") from exc


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_summary(model: nn.Module, input_shape: Sequence[int]) -> list[dict]:
    """Run a dummy input through ``model`` and list every leaf layer: name, type, output shape, params.

    Uses forward hooks (functions PyTorch calls after each layer's forward). The model is run in
    eval mode without gradients and put back in its previous mode afterwards.
    """
    rows: list[dict] = []

    def hook(module: nn.Module, _inputs, output) -> None:
        rows.append(
            dict(
                name=module_names[module],
                type=type(module).__name__,
                output_shape=list(output.shape),
                params=sum(p.numel() for p in module.parameters(recurse=False)),
            )
        )

    module_names = {m: n for n, m in model.named_modules() if n and not list(m.children())}
    handles = [m.register_forward_hook(hook) for m in module_names]
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(*input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return rows


def describe(
    model: nn.Module | str, n_classes: int = 8, input_shape: Sequence[int] | None = None, **kwargs
) -> dict:
    """Everything the Train page shows before launch, for a model or a model name.

    Returns a plain (JSON-able) dict::

        name, title, representation ("mel" | "waveform"), sample_rate, input_shape,
        n_classes, n_params, config,
        receptive_field_ms   first layer's kernel in ms (waveform models; None for "mel")
        hop_ms               first layer's stride in ms (waveform models)
        total_receptive_field_ms   what one step of the last conv stage "sees" (waveform models)
        min_samples          shortest input accepted (waveform models)
        layers               [{name, type, output_shape, params}, ...] from a dummy forward pass

    ``input_shape`` defaults to one clip of 1 s: ``[1, 1, 40, 101]`` (40 Mel bands, 10 ms hop) for
    the CNN, ``[1, 1, sample_rate]`` for the waveform models.
    """
    if isinstance(model, str):
        model = build_model(model, n_classes, **kwargs)
    info = MODEL_INFO[model.name]
    sample_rate = getattr(model, "sample_rate", info["sample_rate"])
    if input_shape is None:
        input_shape = info["input_shape"] if info["representation"] == "mel" else [1, 1, sample_rate]
    out = dict(
        name=model.name,
        title=info["title"],
        summary=info["summary"],
        reference=info["reference"],
        representation=info["representation"],
        sample_rate=sample_rate,
        input_shape=list(input_shape),
        n_classes=n_outputs(model),
        n_params=count_parameters(model),
        config=dict(model.config),
        receptive_field_ms=None,
        hop_ms=None,
        total_receptive_field_ms=None,
        min_samples=None,
    )
    if info["representation"] == "waveform":
        k, s, _p, _d = _time_layers(model)[0]
        field, _jump = receptive_field(model)
        out.update(
            receptive_field_ms=1000.0 * k / sample_rate,
            hop_ms=1000.0 * s / sample_rate,
            total_receptive_field_ms=1000.0 * field / sample_rate,
            min_samples=model.min_samples,
        )
    out["layers"] = layer_summary(model, input_shape)
    return out


def n_outputs(model: nn.Module) -> int:
    """Number of classes a model predicts (the size of its last linear layer)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise KwsError(f"{type(model).__name__} has no linear classifier; cannot tell its classes.")
    return linears[-1].out_features
