"""quantize_campplus.py: the calibration inputs, and the provisioned 8-bit CAM++ on real speech."""
import wave

import numpy as np
import onnx

import quantize_campplus as qc


def write_wav(path, samples):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(qc.SAMPLE_RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def tone(hz, seconds):
    t = np.arange(int(seconds * qc.SAMPLE_RATE)) / qc.SAMPLE_RATE
    return 0.5 * np.sin(2 * np.pi * hz * t)


def test_fbank_puts_a_tone_in_its_band():
    frames = qc.fbank(tone(1000.0, 1.0).astype(np.float32))
    assert frames.shape == (101, 80)  # one frame per 10 ms hop, the first centred on sample 0
    band = int(np.argmax(frames[50]))
    centres = qc.BANDS.argmax(1) * qc.SAMPLE_RATE / 512
    assert abs(centres[band] - 1000.0) < 100.0


def test_each_file_is_one_chunk_of_windows_a_second_apart(tmp_path):
    silence = np.zeros(qc.SAMPLE_RATE // 2)
    write_wav(tmp_path / "a.wav", np.concatenate([silence, tone(220.0, 4.55), silence]))
    write_wav(tmp_path / "b.wav", tone(300.0, 12.0))   # longer than a chunk
    write_wav(tmp_path / "c.wav", tone(300.0, 1.0))    # shorter than a window: skipped
    feeds = list(qc.feeds(sorted(tmp_path.glob("*.wav"))))
    assert len(feeds) == 2
    first, second = feeds
    # Silent ends trimmed: 4.55 s is 455 or 456 frames.
    frames = first["fbank"].shape[1]
    assert frames in (455, 456) and second["fbank"].shape[1] == qc.CHUNK_FRAMES
    np.testing.assert_allclose(first["fbank"][0].mean(0), 0, atol=1e-3)
    pooling = first["pooling"]
    assert pooling.shape == (4, 1, frames)
    assert (pooling.sum(2) == qc.WINDOW_FRAMES).all()
    starts = [int(np.argmax(w[0])) for w in pooling]
    assert starts == [0, 100, 200, frames - qc.WINDOW_FRAMES]


def test_provisioned_model_has_8_bit_convolutions_that_keep_the_embeddings(model_dir):
    quantized = model_dir / "speaker_campplus.onnx"
    ops = {node.op_type for node in onnx.load(str(quantized)).graph.node}
    assert "QLinearConv" in ops and "Conv" not in ops
    # The prompts provisioning decoded, the calibration's own left out.
    held_out = sorted((model_dir / ".cache" / "calibration").glob("*.wav"))[1::2]
    assert len(held_out) >= 50
    cosine = qc.agreement(model_dir / "speaker_campplus_float.onnx", quantized, held_out)
    assert cosine >= qc.MIN_COSINE
