"""Even speech: gated K-weighted loudness of a clip (ITU-R BS.1770), and steady tones that
some voices carry, found and removed.

Both work on a whole mono clip in numpy; the filters run in the frequency domain, which is
exact for a power measurement and fast at sentence lengths.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

BLOCK_S = 0.4
"""Gating block of BS.1770."""
HOP_S = 0.1
"""Step between blocks (75% overlap)."""
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
IMPULSE_TAIL = 8192
"""Zeros appended before filtering, so the filters' response does not wrap around."""

TONE_MIN_HZ = 4000.0
"""Steady tones are looked for above this: lower down, a monotone voice's harmonics are
steady too."""
TONE_PROMINENCE_DB = 25.0
"""A tone stands this far above the spectrum around it."""
TONE_BAND_HZ = 250.0
"""Width of the neighbourhood a tone is compared with."""
TONE_SEGMENTS = 4
"""A tone must be present in each of this many equal parts of the clip."""
TONE_MIN_DBFS = -75.0
"""Weaker tones are inaudible under speech at its level."""
MAX_TONES = 3
"""A voice carries one or two; more is a tonal sound, left alone."""
TONE_SEGMENT_PROMINENCE_DB = 12.0
"""...standing at least this far above its neighbourhood in each part."""
FIT_STEPS = 41
"""Frequencies tried at each of the two refinements of a tone's frequency."""
FIT_BLOCK = 16
"""Samples summed together when trying them: a tone within a bin of the estimate turns by
under a hundredth of a cycle across a block of a clip of 1,600 samples or more."""


def loudness_lufs(clip: npt.NDArray[np.float32], sample_rate: int) -> float:
    """Gated loudness of a mono clip, LUFS (``-inf`` for silence); a clip shorter than one
    block is measured as one block."""
    import numpy as np

    if clip.size == 0:
        return -math.inf
    weighted = _k_weighted(clip.astype(np.float64), sample_rate)
    block = min(clip.size, round(BLOCK_S * sample_rate))
    hop = max(1, round(HOP_S * sample_rate))
    energy = np.concatenate(([0.0], np.cumsum(weighted * weighted)))
    starts = np.arange(0, clip.size - block + 1, hop)
    powers = (energy[starts + block] - energy[starts]) / block
    loud = powers[powers > 10 ** ((ABSOLUTE_GATE_LUFS + 0.691) / 10)]
    if loud.size == 0:
        return -math.inf
    relative = 10 ** ((_lufs(float(np.mean(loud))) + RELATIVE_GATE_LU + 0.691) / 10)
    gated = loud[loud > relative]
    return _lufs(float(np.mean(gated if gated.size else loud)))


def _lufs(power: float) -> float:
    return -0.691 + 10 * math.log10(power) if power > 0 else -math.inf


def _k_weighted(samples: npt.NDArray[np.float64], sample_rate: int) -> npt.NDArray[np.float64]:
    import numpy as np

    size = fast_size(samples.size + IMPULSE_TAIL)
    spectrum = np.fft.rfft(samples, size) * _k_response(size, sample_rate)
    return np.fft.irfft(spectrum, size)[: samples.size]


@functools.lru_cache(maxsize=32)
def _k_response(size: int, sample_rate: int) -> npt.NDArray[np.complex128]:
    """The K-weighting filter (pre-filter shelf and RLB high-pass, as in libebur128) on the
    ``rfft`` grid of ``size`` samples."""
    import numpy as np

    z = np.exp(-1j * np.pi * np.arange(size // 2 + 1) / (size / 2))  # z^-1 on the grid

    def biquad(b: tuple[float, ...], a: tuple[float, ...]) -> npt.NDArray[np.complex128]:
        numerator = b[0] + b[1] * z + b[2] * z * z
        return np.asarray(numerator / (a[0] + a[1] * z + a[2] * z * z), dtype=np.complex128)

    k = math.tan(math.pi * 1681.974450955533 / sample_rate)
    q = 0.7071752369554196
    vh = 10 ** (3.999843853973347 / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = biquad(
        ((vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0),
        (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0),
    )
    k = math.tan(math.pi * 38.13547087602444 / sample_rate)
    q = 0.5003270373238773
    a0 = 1 + k / q + k * k
    high_pass = biquad((1.0, -2.0, 1.0), (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0))
    return np.asarray(shelf * high_pass, dtype=np.complex128)


def fast_size(minimum: int) -> int:
    """The smallest FFT length of at least ``minimum`` whose factors are 2, 3 and 5 only."""
    best = 1 << max(0, (minimum - 1).bit_length())
    fives = 1
    while fives < best:
        threes = fives
        while threes < best:
            size = threes
            while size < minimum:
                size *= 2
            best = min(best, size)
            threes *= 3
        fives *= 5
    return best


def steady_tones(clip: npt.NDArray[np.float32], sample_rate: int) -> list[float]:
    """Frequencies (Hz) of steady sinusoids above ``TONE_MIN_HZ``: far above the spectrum
    around them over the whole clip, and present in every part of it. More than
    ``MAX_TONES`` such peaks is a tonal sound, not a voice's hum: none is reported."""
    import numpy as np

    if clip.size < sample_rate // 4:
        return []
    candidates = _prominent(clip, sample_rate, TONE_PROMINENCE_DB)
    if not candidates or len(candidates) > MAX_TONES:
        return []
    parts = np.array_split(clip, TONE_SEGMENTS)
    tolerance_hz = 2 * sample_rate / parts[-1].size
    in_parts = [_prominent(part, sample_rate, TONE_SEGMENT_PROMINENCE_DB) for part in parts]
    return [
        frequency
        for frequency in candidates
        if all(any(abs(f - frequency) <= tolerance_hz for f in peaks) for peaks in in_parts)
    ]


def _prominent(
    clip: npt.NDArray[np.float32], sample_rate: int, prominence_db: float
) -> list[float]:
    """Spectral peaks above ``TONE_MIN_HZ``, at least ``TONE_MIN_DBFS`` strong and standing
    ``prominence_db`` over their band's median."""
    import numpy as np

    window = np.hanning(clip.size)
    size = fast_size(clip.size)
    power = np.abs(np.fft.rfft(clip.astype(np.float64) * window, size)) ** 2
    bin_hz = sample_rate / size
    band = max(8, round(TONE_BAND_HZ / bin_hz))
    first = math.ceil(TONE_MIN_HZ / bin_hz)
    count = (power.size - first) // band
    if count < 1:
        return []
    bands = power[first : first + count * band].reshape(count, band)
    audible = (10 ** (TONE_MIN_DBFS / 20) * window.sum() / 2) ** 2  # a sine's windowed peak
    threshold = np.maximum(np.median(bands, axis=1) * 10 ** (prominence_db / 10), audible)
    peaks = []
    for index in np.flatnonzero(bands.max(axis=1) > threshold):
        top = first + index * band + int(np.argmax(bands[index]))
        peaks.append(top * bin_hz)
    return peaks


def remove_tones(
    clip: npt.NDArray[np.float32], sample_rate: int, frequencies: list[float]
) -> npt.NDArray[np.float32]:
    """``clip`` without the steady sinusoids near ``frequencies``: each one's exact frequency,
    amplitude and phase are fitted over the whole clip and the sinusoid subtracted, so the
    speech around it keeps its spectrum (a band-stop would take the speech's share too)."""
    import numpy as np

    if not frequencies:
        return clip
    samples = clip.astype(np.float64)
    times = np.arange(samples.size) / sample_rate
    blocks = samples.size // FIT_BLOCK
    block_times = times[: blocks * FIT_BLOCK].reshape(blocks, FIT_BLOCK).mean(axis=1)
    for estimate in frequencies:
        # shifted down by the estimate, the tone is within a bin of 0 Hz: summed over short
        # blocks, its strength at each nearby frequency is cheap to try
        shifted = samples * np.exp(-2j * np.pi * estimate * times)
        sums = shifted[: blocks * FIT_BLOCK].reshape(blocks, FIT_BLOCK).sum(axis=1)
        offset = 0.0
        for span in (sample_rate / samples.size, sample_rate / samples.size / 20):
            grid = offset + np.linspace(-span, span, FIT_STEPS)
            strengths = np.abs(np.exp(-2j * np.pi * np.outer(grid, block_times)) @ sums)
            offset = float(grid[int(np.argmax(strengths))])
        frequency = estimate + offset
        phase = 2 * np.pi * frequency * times
        basis = np.stack([np.cos(phase), np.sin(phase)], axis=1)
        coefficients = np.linalg.lstsq(basis, samples, rcond=None)[0]
        samples -= basis @ coefficients
    return samples.astype(np.float32)
