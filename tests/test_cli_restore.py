import io
import os
import shutil
import stat
import struct
import subprocess
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from conftest import DATASETS, REPO
from mirnet_hf.cli import main
from mirnet_hf.image_io import read_image, write_image

KODAK = sorted((DATASETS / "Kodak24").glob("*.png"))


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for path in KODAK[:2]:
        Image.open(path).crop((0, 0, 96, 80)).save(folder / path.name)
    return folder


def restore_cli(model, *args):
    return main(["restore", "--model", str(model), "--quiet", "--tile", "64", "--tile-overlap", "8", *args])


def test_files_folders_and_globs(converted_v1, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert restore_cli(converted_v1, str(photos), "--output", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in KODAK[:2]]
    out_glob = tmp_path / "out_glob"
    assert restore_cli(converted_v1, str(photos / "kodim0*.png"), "--output", str(out_glob)) == 0
    assert len(list(out_glob.iterdir())) == 2
    single = tmp_path / "single.png"
    assert restore_cli(converted_v1, str(photos / KODAK[0].name), "--output", str(single)) == 0
    restored = Image.open(single)
    assert restored.size == (96, 80) and restored.mode == "RGB"
    # The CLI computes what the Python API computes.
    from mirnet_hf import restore

    expected = restore(Image.open(photos / KODAK[0].name), converted_v1, device="cpu", tile_size=64, tile_overlap=8)
    assert np.array_equal(np.asarray(restored), np.asarray(expected))


def test_self_ensemble_flag_gives_the_apis_self_ensemble(converted_v1, photos, tmp_path):
    from mirnet_hf import restore

    source = tmp_path / "small.png"  # one small tile: nine passes of the full-size v1 network
    Image.open(KODAK[0]).crop((0, 0, 40, 32)).save(source)
    out = tmp_path / "ensemble.png"
    assert restore_cli(converted_v1, str(source), "--output", str(out), "--self-ensemble") == 0
    settings = {"device": "cpu", "tile_size": 64, "tile_overlap": 8}
    expected = restore(Image.open(source), converted_v1, self_ensemble=True, **settings)
    plain = restore(Image.open(source), converted_v1, **settings)
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))
    assert not np.array_equal(np.asarray(expected), np.asarray(plain))


def test_unreadable_inputs_are_reported_and_skipped(converted_v1, photos, tmp_path, capsys):
    (photos / "broken.png").write_bytes(b"not a png at all")
    buffer = io.BytesIO()
    Image.open(KODAK[2]).save(buffer, format="JPEG")
    (photos / "truncated.jpg").write_bytes(buffer.getvalue()[:2000])
    out = tmp_path / "out"
    code = restore_cli(converted_v1, str(photos), str(tmp_path / "missing.png"), "--output", str(out))
    assert code == 1
    errors = capsys.readouterr().err
    assert "broken.png" in errors and "truncated.jpg" in errors and "missing.png" in errors
    assert "Traceback" not in errors
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [p.name for p in KODAK[:2]]
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]


def test_sixteen_bit_png_and_tiff_stay_sixteen_bit(converted_v1, tmp_path):
    rng = np.random.default_rng(0)
    deep = (rng.random((40, 52, 3)) * 65535).astype(np.uint16)
    write_image(tmp_path / "deep.png", deep)
    write_image(tmp_path / "deep.tif", deep)
    gray = (rng.random((30, 20)) * 65535).astype(np.uint16)
    Image.fromarray(gray).save(tmp_path / "gray16.png")
    out = tmp_path / "out"
    assert (
        restore_cli(
            converted_v1,
            str(tmp_path / "deep.png"),
            str(tmp_path / "deep.tif"),
            str(tmp_path / "gray16.png"),
            "--output",
            str(out),
        )
        == 0
    )
    for name in ("deep.png", "deep.tif"):
        loaded = read_image(out / name)
        assert loaded.image.dtype == np.uint16 and loaded.image.shape == (40, 52, 3), name
        assert len(np.unique(loaded.image)) > 256  # real 16-bit values, not 8-bit ones scaled
    gray_out = Image.open(out / "gray16.png")
    assert gray_out.mode.startswith("I") and gray_out.size == (20, 30)


def test_icc_profile_and_exif_are_kept(converted_v1, tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCamera"  # Make
    exif[0x0112] = 6  # rotated: the output must be stored upright with orientation 1
    source = tmp_path / "camera.jpg"
    Image.open(KODAK[0]).crop((0, 0, 64, 40)).save(source, quality=95, icc_profile=icc, exif=exif.tobytes())
    out = tmp_path / "camera_restored.jpg"
    assert restore_cli(converted_v1, str(source), "--output", str(out)) == 0
    restored = Image.open(out)
    assert restored.format == "JPEG" and restored.size == (40, 64)
    assert restored.info.get("icc_profile") == icc
    assert restored.getexif()[0x010F] == "TestCamera" and restored.getexif()[0x0112] == 1


def test_cmyk_jpeg_and_animated_gif(converted_v1, tmp_path, capsys):
    Image.open(KODAK[0]).crop((0, 0, 48, 32)).convert("CMYK").save(tmp_path / "cmyk.jpg")
    frames = [Image.new("RGB", (30, 20), color) for color in ("red", "blue", "green")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    out = tmp_path / "out"
    assert restore_cli(converted_v1, str(tmp_path / "cmyk.jpg"), str(tmp_path / "anim.gif"), "--output", str(out)) == 0
    assert Image.open(out / "cmyk.jpg").mode == "CMYK"
    assert Image.open(out / "anim.gif").size == (30, 20)
    assert "3 frames; restoring the first" in capsys.readouterr().out


def test_oversized_input_is_refused_and_the_rest_restored(converted_v1, photos, tmp_path, capsys):
    from test_inference import huge_png_header

    huge_png_header(photos / "huge.png", 20000, 20000)
    code = restore_cli(converted_v1, str(photos), "--output", str(tmp_path / "out"))
    assert code == 1
    assert "above the limit of 64 megapixels" in capsys.readouterr().err
    assert len(list((tmp_path / "out").glob("kodim*.png"))) == 2


def test_never_overwrites_the_input(converted_v1, photos, capsys):
    target = photos / KODAK[0].name
    before = target.read_bytes()
    assert restore_cli(converted_v1, str(target), "--output", str(target)) == 1
    assert target.read_bytes() == before
    assert "overwrite the input" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--tile", "30"], "invalid tile settings: tile_size=30"), (["--precision", "float16"], "float16")],
)
def test_bad_settings_exit_with_a_clear_message(converted_v1, photos, tmp_path, capsys, args, message):
    code = main(["restore", "--model", str(converted_v1), str(photos), "--output", str(tmp_path / "o"), *args])
    assert code == 2 and message in capsys.readouterr().err


def test_writes_are_atomic(tmp_path, monkeypatch):
    target = tmp_path / "result.png"
    target.write_bytes(b"previous result")

    def interrupted(fd):
        raise KeyboardInterrupt  # as if Ctrl-C arrived while the file was being written

    monkeypatch.setattr("mirnet_hf.image_io.os.fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_image(target, Image.new("RGB", (8, 8)), format="PNG")
    assert target.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]  # no half-written file left behind


def test_console_script_is_installed(converted_v1, tmp_path):
    executable = shutil.which("mirnet-hf") or str(REPO / ".venv" / "bin" / "mirnet-hf")
    source = tmp_path / "in.png"
    Image.open(KODAK[0]).crop((0, 0, 40, 40)).save(source)
    result = subprocess.run(
        [executable, "restore", "--model", str(converted_v1), str(source), "--output", str(tmp_path / "o.png")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "o.png").size == (40, 40)


# --- hostile and careless use -------------------------------------------------------------------------------


def png_file(path, width, height, *, bit_depth=16, chunks=(), pixels=None):
    """A PNG with the given header and extra chunks before its image data (`pixels`: the raw scanlines)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)
    data = zlib.compress(pixels if pixels is not None else b"\x00" * 64)
    body = chunk(b"IHDR", ihdr) + b"".join(chunk(kind, value) for kind, value in chunks) + chunk(b"IDAT", data)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b""))
    return path


def test_png_bombs_are_refused_before_decoding(converted_v1, tmp_path, capsys):
    # A compressed ICC profile that expands to 16 MB (the one seen here expanded to gigabytes).
    icc_bomb = b"icc\x00\x00" + zlib.compress(b"\x00" * 16_000_000, 9)
    rows = b"".join(b"\x00" + b"\x12\x34" * 3 * 8 for _ in range(8))
    icc = png_file(tmp_path / "icc.png", 8, 8, chunks=[(b"iCCP", icc_bomb)], pixels=rows)
    # 20000x20000, 16-bit, with a chunk that makes Pillow refuse its header: the size must still be read.
    huge = png_file(tmp_path / "huge16.png", 20000, 20000, chunks=[(b"iCCP", icc_bomb)])
    assert restore_cli(converted_v1, str(icc), str(huge), "--output", str(tmp_path / "out")) == 1
    err = capsys.readouterr().err
    assert "ICC profile expands to more than 4 MB, the limit" in err
    assert "20000x20000 = 400.0 megapixels, above the limit of 64 megapixels" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_scale_is_refused_for_a_model_that_is_not_super_resolution(converted_v1, photos, tmp_path, capsys):
    code = restore_cli(converted_v1, str(photos), "--output", str(tmp_path / "out"), "--scale", "5")
    assert code == 2
    assert "--scale 5 is for super-resolution models" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_outputs_follow_the_umask_and_keep_a_replaced_files_mode(converted_v1, photos, tmp_path):
    source = photos / KODAK[0].name
    previous = os.umask(0o027)
    try:
        assert restore_cli(converted_v1, str(source), "--output", str(tmp_path / "new.png")) == 0
        replaced = tmp_path / "replaced.png"
        replaced.write_bytes(b"old")
        replaced.chmod(0o604)
        assert restore_cli(converted_v1, str(source), "--output", str(replaced)) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new.png").stat().st_mode) == 0o640
    assert stat.S_IMODE(replaced.stat().st_mode) == 0o604


def test_ctrl_c_exits_130_with_one_line_and_no_partial_file(converted_v1, photos, tmp_path, capsys, monkeypatch):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("mirnet_hf.inference.MIRNetRestorer.restore_tensor", interrupted)
    out = tmp_path / "out"
    assert restore_cli(converted_v1, str(photos), "--output", str(out)) == 130
    err = capsys.readouterr().err
    assert err.strip() == "mirnet-hf restore: interrupted"
    assert not out.exists() or not list(out.iterdir())
