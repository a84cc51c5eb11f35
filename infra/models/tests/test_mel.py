"""Our mel filterbank = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80).

Whisper (and so whisper.cpp, which reads the bank from the ggml file) uses
librosa's defaults: Slaney mel scale and Slaney (unit area) normalisation.
"""
import math

import numpy as np
import pytest

import ct2_to_ggml as conv

SR, N_FFT = 16000, 400
BIN_HZ = SR / N_FFT  # 40 Hz between FFT bins


def slaney_mel(hz):
    """Slaney's Auditory Toolbox scale, written out independently."""
    return 3 * hz / 200 if hz < 1000 else 15 + 27 * math.log(hz / 1000) / math.log(6.4)


def slaney_hz(mel):
    return 200 * mel / 3 if mel < 15 else 1000 * 6.4 ** ((mel - 15) / 27)


def edges(n_mels=80):
    top = slaney_mel(SR / 2)
    return [slaney_hz(top * k / (n_mels + 1)) for k in range(n_mels + 2)]


def weight(i, b, n_mels=80):
    """Triangle i (edges e[i] < e[i+1] < e[i+2]) at bin b, scaled to unit area."""
    e, f = edges(n_mels), b * BIN_HZ
    tri = max(0.0, min((f - e[i]) / (e[i + 1] - e[i]), (e[i + 2] - f) / (e[i + 2] - e[i + 1])))
    return tri * 2 / (e[i + 2] - e[i])


@pytest.fixture(scope="module")
def bank():
    return conv.mel_filters()


def test_shape_and_type(bank):
    assert bank.shape == (80, 201) and bank.dtype == np.float32
    assert conv.mel_filters(n_mels=128).shape == (128, 201)  # large-v3


@pytest.mark.parametrize("i,b", [(0, 1), (1, 2), (10, 15), (40, 52), (79, 186), (79, 199)])
def test_entries_from_closed_form(bank, i, b):
    assert bank[i, b] == pytest.approx(weight(i, b), rel=1e-6)


def test_known_values(bank):
    # first filter: edges 0, 37.239, 74.478 Hz, only bin 1 (40 Hz) inside:
    # (74.478 - 40) / 37.239 * 2 / 74.478
    e = edges()
    assert e[1] == pytest.approx(37.23921, abs=1e-5) and e[-1] == pytest.approx(8000)
    assert bank[0, 1] == pytest.approx(0.02486259, abs=1e-8)
    assert np.count_nonzero(bank[0]) == 1


def test_rows_are_triangles_within_their_band(bank):
    e = np.array(edges())
    hz = np.arange(201) * BIN_HZ
    for i, row in enumerate(bank):
        nz = np.flatnonzero(row)
        assert len(nz) and np.all(np.diff(nz) == 1), i  # one contiguous support
        assert hz[nz[0]] > e[i] and hz[nz[-1]] < e[i + 2], i
        peak = int(np.argmax(row))
        assert np.all(np.diff(row[nz[0]:peak + 1]) >= 0) and np.all(np.diff(row[peak:nz[-1] + 1]) <= 0)
        assert row.max() <= 2 / (e[i + 2] - e[i]) * (1 + 1e-6), i  # apex height 2/width


def test_unit_area(bank):
    # a triangle of height 2/width has area 1 (Slaney norm); sampled every
    # 40 Hz the sum is close, and very close once a band spans many bins
    area = bank.sum(axis=1) * BIN_HZ
    assert np.allclose(area, 1.0, atol=0.1)
    assert np.allclose(area[60:], 1.0, atol=0.01)  # bands > 600 Hz wide
    assert area.mean() == pytest.approx(1.0, abs=0.005)


def test_equals_librosa():
    librosa = pytest.importorskip("librosa", reason="install with infra/python-env.sh --test")
    for n_mels in (80, 128):
        ref = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=n_mels)
        np.testing.assert_allclose(conv.mel_filters(n_mels=n_mels), ref, rtol=1e-6, atol=1e-9)
