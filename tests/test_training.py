"""The training script end to end: a tiny model on real photo crops, in subprocesses as users run it."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from hub_server import LocalHub

from conftest import REPO, load_script, make_image_folder, photo_crops
from mirnet_hf import MIRNetConfig
from mirnet_hf.training import components, parse_args
from mirnet_hf.training.components import cpu_has_native_bfloat16

pytestmark = pytest.mark.slow
TRAIN = str(REPO / "training" / "train.py")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    return {
        "train": make_image_folder(root / "train", photo_crops(8, size=(48, 48))),
        "validation": make_image_folder(root / "validation", photo_crops(2, size=(64, 48), offset=20)),
    }


def base_args(data, output_dir, steps=12, **extra):
    args = {
        "--task": "denoising",
        "--dataset_name": str(data["train"]),
        "--output_dir": str(output_dir),
        "--config_name": "mirnet-tiny",
        "--max_train_steps": str(steps),
        "--train_batch_size": "2",
        "--patch_size": "32",
        "--sigma_range": ["10", "30"],
        "--checkpointing_steps": "4",
        "--checkpoints_total_limit": "2",
        "--validation_steps": "1000",
        "--logging_steps": "2",
        "--report_to": "none",
        "--learning_rate": "1e-3",
    }
    args.update(extra)
    flat = []
    for key, value in args.items():
        if value is None:
            flat.append(key)
        elif isinstance(value, list):
            flat += [key, *value]
        else:
            flat += [key, value]
    return flat


def environment(**extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


def run(args, env=None, timeout=600, script=TRAIN):
    return subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, env=env or environment(), timeout=timeout
    )


def history(output_dir) -> dict[int, float]:
    """Loss per step (the last record of a step wins: a resumed run repeats the steps after its checkpoint)."""
    losses = {}
    path = Path(output_dir) / "logs" / "history.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        record = json.loads(line)
        if "train/loss" in record:
            losses[record["step"]] = record["train/loss"]
    return losses


def test_training_writes_a_loadable_model_with_its_card_and_pushes_it(tmp_path, data):
    output = tmp_path / "run"
    extra = {
        "--validation_dataset_name": str(data["validation"]),
        "--validation_split": "train",
        "--validation_steps": "6",
        "--report_to": "tensorboard",
        "--push_to_hub": None,
        "--hub_model_id": "alice/mirnet-test-denoiser",
        "--use_ema": None,
        "--ema_decay": "0.5",
    }
    args = base_args(data, output, **extra)
    with LocalHub(token="hf_alice") as hub:
        env = environment(HF_ENDPOINT=hub.endpoint, HF_TOKEN="hf_alice", HF_HUB_DISABLE_XET="1")
        env.pop("HF_HUB_OFFLINE", None)
        finished = run(args, env=env)
        assert finished.returncode == 0, finished.stderr[-3000:]
        pushed = hub.state.repos["alice/mirnet-test-denoiser"]

    # The folder is a from_pretrained folder that restores images.
    from mirnet_hf import MIRNetForImageRestoration, restore

    model = MIRNetForImageRestoration.from_pretrained(output)
    assert model.config.task == "denoising"
    photo = photo_crops(1, size=(40, 30))[0]
    assert restore(photo, output, device="cpu").size == (40, 30)

    # Losses per step, learning rate and throughput were logged; the progress bar showed them.
    losses = history(output)
    assert sorted(losses) == list(range(1, 13))
    records = [json.loads(line) for line in (output / "logs" / "history.jsonl").read_text().splitlines()]
    assert any("train/images_per_second" in r and r["train/images_per_second"] > 0 for r in records)
    assert any("validation/psnr" in r and "validation/input_psnr" in r for r in records)
    assert "img_s=" in finished.stderr and "lr=" in finished.stderr
    assert list((output / "logs").rglob("events.out.tfevents.*")), "no TensorBoard log"
    # The validation curve for the model card: one point per validation.
    from mirnet_hf.model_card import read_validation_history, validation_curve_svg

    curve = read_validation_history(output / "logs" / "history.jsonl")
    assert [record["step"] for record in curve] == [6, 12]
    assert validation_curve_svg(curve, "validation (sigma 25)").count("<circle") == 2
    # Rotation keeps the newest checkpoints only.
    assert sorted(p.name for p in output.glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-8"]

    card = (output / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["pipeline_tag"] == "image-to-image"
    metrics = meta["model-index"][0]["results"][0]["metrics"]
    assert [m["type"] for m in metrics] == ["psnr", "ssim"] and metrics[0]["value"] > 0
    for expected in ("train.py", "--max_train_steps 12", "training time", "hardware", "EMA", "validation (sigma 25)"):
        assert expected in card, expected

    # What reached the Hub: the model folder, not checkpoints or logs.
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= set(pushed)
    assert not any(name.startswith(("checkpoint-", "logs/")) for name in pushed)
    assert pushed["README.md"].decode() == card


def test_push_failures_keep_the_folder_and_say_why(tmp_path, data):
    output = tmp_path / "run"
    args = base_args(data, output, steps=2, **{"--push_to_hub": None, "--hub_model_id": "alice/m"})
    # No token.
    env = environment(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_DISABLE_XET="1")
    env.pop("HF_TOKEN", None)
    finished = run(args, env=env)
    assert finished.returncode == 1
    assert "no Hugging Face token" in finished.stderr and f"kept in {output}" in finished.stderr
    assert (output / "model.safetensors").is_file()
    assert (output / "checkpoint-2" / "COMPLETE").is_file()  # the last step is saved even off the 4-step grid
    # The Hub cannot be reached (nothing listens on the port).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env.update(HF_TOKEN="hf_x", HF_ENDPOINT=f"http://127.0.0.1:{port}")
    env.pop("HF_HUB_OFFLINE", None)
    finished = run(
        base_args(data, tmp_path / "run2", steps=2, **{"--push_to_hub": None, "--hub_model_id": "a/m"}), env
    )
    assert finished.returncode == 1
    assert "could not push to a/m" in finished.stderr and "kept in" in finished.stderr
    assert (tmp_path / "run2" / "model.safetensors").is_file()


def kill_at_step(command, output_dir, step, env=None):
    """Starts a run and SIGKILLs it once its history reaches `step`; returns the last step it logged."""
    process = subprocess.Popen(command, env=env or environment(), stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while max(history(output_dir), default=0) < step and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the whole group: launcher, ranks and their data workers
    process.wait()
    return max(history(output_dir))


@pytest.mark.parametrize("workers", ["0", "2"])
def test_sigkill_then_resume_gives_the_losses_of_an_uninterrupted_run(tmp_path, data, workers):
    steps = 40
    extra = {"--checkpointing_steps": "5", "--dataloader_num_workers": workers}
    reference = tmp_path / "reference"
    finished = run(base_args(data, reference, steps=steps, **extra))
    assert finished.returncode == 0, finished.stderr[-3000:]
    expected = history(reference)

    interrupted = tmp_path / "interrupted"
    args = base_args(data, interrupted, steps=steps, **extra)
    killed_at = kill_at_step([sys.executable, TRAIN, *args], interrupted, 12)
    assert killed_at < steps, "the run finished before it could be killed"

    finished = run(args + ["--resume_from_checkpoint", "latest"])
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "resumed from" in finished.stderr
    resumed = history(interrupted)
    assert sorted(resumed) == list(range(1, steps + 1))
    assert resumed == expected  # every step's loss, bit for bit


def test_resume_with_another_number_of_workers_says_how_to_resume(tmp_path, data):
    output = tmp_path / "run"
    finished = run(base_args(data, output, steps=4, **{"--dataloader_num_workers": "2"}))
    assert finished.returncode == 0, finished.stderr[-3000:]
    args = base_args(data, output, steps=8, **{"--dataloader_num_workers": "0"})
    finished = run(args + ["--resume_from_checkpoint", "latest"])
    assert finished.returncode != 0
    assert "saved with 2 data stream(s) (--dataloader_num_workers 2)" in finished.stderr


def test_bf16_autocast_on_cpu_reaches_the_float32_loss(tmp_path, data):
    losses = {}
    for precision in ("no", "bf16"):
        output = tmp_path / precision
        extra = {"--mixed_precision": precision, "--channels_last": None, "--dataloader_num_workers": "0"}
        finished = run(base_args(data, output, steps=30, **extra))
        assert finished.returncode == 0, finished.stderr[-3000:]
        losses[precision] = history(output)
    bf16_stderr = finished.stderr

    # The same data and seed: bfloat16 follows the float32 run closely and ends at the same loss.
    def mean(run, steps):
        return sum(run[step] for step in steps) / len(steps)

    first, last = range(1, 6), range(26, 31)
    assert mean(losses["no"], last) < 0.8 * mean(losses["no"], first)  # it learned
    assert abs(mean(losses["bf16"], last) - mean(losses["no"], last)) < 0.03 * mean(losses["no"], last)
    assert losses["bf16"] != losses["no"]  # it really ran in another precision
    assert "mixed precision bf16" in (tmp_path / "bf16" / "README.md").read_text()
    # Where the CPU only emulates bfloat16, an explicit bf16 still runs, and the run says what it costs.
    warned = "without native bfloat16" in bf16_stderr
    assert warned != cpu_has_native_bfloat16()


def test_auto_precision_trains_in_bf16_only_where_the_cpu_has_it(tmp_path, data):
    finished = run(base_args(data, tmp_path / "auto", steps=2, **{"--mixed_precision": "auto"}))
    assert finished.returncode == 0, finished.stderr[-3000:]
    expected = "bf16" if cpu_has_native_bfloat16() else "no"
    assert f"mixed precision {expected}" in (tmp_path / "auto" / "README.md").read_text()


@pytest.mark.parametrize("native", [True, False])
def test_resolve_mixed_precision(monkeypatch, caplog, native):
    monkeypatch.setattr(components, "cpu_has_native_bfloat16", lambda: native)
    cpu = torch.device("cpu")
    assert components.resolve_mixed_precision("auto", cpu) == ("bf16" if native else "no")
    assert components.resolve_mixed_precision("no", cpu) == "no"
    assert components.resolve_mixed_precision(None, cpu) is None
    caplog.clear()
    assert components.resolve_mixed_precision("bf16", cpu) == "bf16"  # the user's explicit choice stands
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == (0 if native else 1)
    if warnings:
        assert torch.backends.cpu.get_cpu_capability() in warnings[0] and "--mixed_precision auto" in warnings[0]


def test_gradient_accumulation_equals_the_larger_batch(tmp_path, data):
    # Two micro-batches of 2 read the same 4 patches as one batch of 4, so the steps match.
    losses = {}
    for name, batch, accumulation in (("large", "4", "1"), ("accumulated", "2", "2")):
        output = tmp_path / name
        extra = {"--train_batch_size": batch, "--gradient_accumulation_steps": accumulation}
        finished = run(base_args(data, output, steps=6, **{"--dataloader_num_workers": "0", **extra}))
        assert finished.returncode == 0, finished.stderr[-3000:]
        losses[name] = history(output)
    assert sorted(losses["accumulated"]) == list(range(1, 7))
    for step, loss in losses["large"].items():
        assert abs(losses["accumulated"][step] - loss) < 1e-4 * loss, step


def test_compiled_steps_equal_eager_steps(tmp_path, data):
    # Inductor's compilation, not the steps, is what this test waits for: a one-block, two-stream model with one
    # attention unit per stream (a third of mirnet-tiny's graph) still passes every kind of layer through it.
    config = tmp_path / "config.json"
    MIRNetConfig(version="v1", num_features=8, num_rrg=1, num_mrb=1, num_streams=2, num_columns=1).to_json_file(config)
    losses = {}
    for mode, extra in (("eager", {}), ("compiled", {"--torch_compile": None})):
        output = tmp_path / mode
        options = {"--dataloader_num_workers": "0", "--config_name": str(config), **extra}
        finished = run(base_args(data, output, steps=3, **options))
        assert finished.returncode == 0, finished.stderr[-3000:]
        losses[mode] = history(output)
    assert sorted(losses["compiled"]) == [1, 2, 3]
    for step, loss in losses["eager"].items():
        assert abs(losses["compiled"][step] - loss) < 1e-4 * loss, step


@pytest.mark.parametrize("workers", ["0", "2"])
def test_sigterm_to_the_process_group_saves_a_checkpoint_and_exits(tmp_path, data, workers):
    output = tmp_path / "run"
    args = base_args(
        data, output, steps=10_000, **{"--checkpointing_steps": "1000", "--dataloader_num_workers": workers}
    )
    process = subprocess.Popen(
        [sys.executable, TRAIN, *args], env=environment(), stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.time() + 300
    while max(history(output), default=0) < 3 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGTERM)  # as Ctrl-C and job schedulers do: the data workers get it too
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-2000:]
    assert "stopped by signal" in stderr
    checkpoints = list(output.glob("checkpoint-*"))
    assert len(checkpoints) == 1 and (checkpoints[0] / "COMPLETE").is_file()
    stopped_at = int(checkpoints[0].name.split("-")[1])
    assert 3 <= stopped_at < 10_000


def test_two_processes_step_together_on_different_data(tmp_path, data):
    output = tmp_path / "run"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
        str(REPO / "tests" / "scripts" / "train_and_report.py"),
    ]  # fmt: skip
    env = environment(ACCELERATE_USE_CPU="1")
    try:
        finished = subprocess.run(
            [*launcher, *base_args(data, output, steps=6, **{"--dataloader_num_workers": "0"})],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    except subprocess.TimeoutExpired as error:  # show where it stopped
        pytest.fail(f"the 2-process run did not finish in 300 s; its log:\n{(error.stderr or b'').decode()[-4000:]}")
    assert finished.returncode == 0, finished.stderr[-3000:]
    reports = [json.loads((output / f"rank-{rank}.json").read_text()) for rank in range(2)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert [r["step"] for r in reports] == [6, 6]
    assert reports[0]["weights_sha256"] == reports[1]["weights_sha256"]
    # Each rank read its own half of every epoch.
    first_epoch = [set(r["seen"]["0"]) for r in reports]
    assert len(first_epoch[0]) == len(first_epoch[1]) == 4
    assert not first_epoch[0] & first_epoch[1]
    assert json.loads((output / "checkpoint-4" / "COMPLETE").read_text())["step"] == 4


def test_two_processes_with_two_workers_each_resume_exactly_after_sigkill(tmp_path, data):
    def launcher():
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(port), TRAIN,
        ]  # fmt: skip

    env = environment(ACCELERATE_USE_CPU="1")
    extra = {"--dataloader_num_workers": "2", "--checkpointing_steps": "3"}
    reference = tmp_path / "reference"
    finished = subprocess.run(
        [*launcher(), *base_args(data, reference, steps=12, **extra)], capture_output=True, text=True, env=env
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    interrupted = tmp_path / "interrupted"
    args = base_args(data, interrupted, steps=12, **extra)
    assert kill_at_step([*launcher(), *args], interrupted, 5, env=env) < 12
    finished = subprocess.run(
        [*launcher(), *args, "--resume_from_checkpoint", "latest"], capture_output=True, text=True, env=env
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert history(interrupted) == history(reference)
    for run_dir in (reference, interrupted):  # two processes really ran (not one, as `--cpu` alone gives)
        assert "x 2 processes" in (run_dir / "README.md").read_text()


def learning_rates(output_dir) -> dict[int, float]:
    path = Path(output_dir) / "logs" / "history.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {record["step"]: record["train/learning_rate"] for record in records if "train/learning_rate" in record}


def train_then_continue(tmp_path, data, steps: int, then: int, **extra) -> tuple[Path, Path, str]:
    """Trains `steps` steps into `first`, then a second run from its weights to step `then` with `extra` flags;
    returns both output folders and the second run's log."""
    first, second = tmp_path / "first", tmp_path / "second"
    schedule = {"--logging_steps": "1", "--lr_warmup_steps": "2"}
    finished = run(base_args(data, first, steps=steps, **schedule))
    assert finished.returncode == 0, finished.stderr[-3000:]
    continued = run(base_args(data, second, steps=then, **{"--model_name_or_path": str(first), **extra, **schedule}))
    assert continued.returncode == 0, continued.stderr[-3000:]
    return first, second, continued.stderr


def test_a_run_continues_from_its_weights_alone_at_their_step(tmp_path, data):
    # The whole run, 8 steps, saves its final folder; a run continued from that folder at step 5 (its
    # checkpoint lost) counts on from 5 with the same schedule, and its card counts every step.
    first, second, log = train_then_continue(tmp_path, data, 8, 8, **{"--initial_step": "5", "--seed": "1"})
    assert "continuing from" in log and "at step 5" in log
    assert sorted(history(second)) == [6, 7, 8]
    whole, rest = learning_rates(first), learning_rates(second)
    assert rest == pytest.approx({step: whole[step] for step in (6, 7, 8)}, rel=1e-9)
    assert rest[6] > rest[8] > 0  # the cosine, part way down
    card = (second / "README.md").read_text()
    assert "| steps | 8 (16 patches) |" in card and f"| continued from | {first} at step 5 (" in card


def test_a_continued_run_refuses_an_earlier_runs_checkpoint_left_in_its_folder(tmp_path, data):
    # The next warm restart's config names the same output folder as the last one, which still holds that run's
    # final checkpoint at the step the new one starts from: resuming it would train the old run on, so it stops.
    first = tmp_path / "first"
    assert run(base_args(data, first, steps=4)).returncode == 0
    shipped = tmp_path / "shipped"
    shutil.copytree(first, shipped, ignore=shutil.ignore_patterns("checkpoint-*", "logs"))
    flags = {"--model_name_or_path": str(shipped), "--initial_step": "4", "--lr_cycle_start": "4"}
    again = run(base_args(data, first, steps=8, **{**flags, "--resume_from_checkpoint": "latest"}))
    assert again.returncode != 0
    assert "checkpoint-4 was saved at step 4, not after --initial_step 4: it is an earlier run's" in again.stderr
    assert not (first / "checkpoint-8").exists()
    # Moved aside, the same command starts the new cycle from the weights named.
    first.rename(tmp_path / "previous")
    fresh = run(base_args(data, first, steps=8, **{**flags, "--resume_from_checkpoint": "latest"}))
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "at step 4" in fresh.stderr and (first / "checkpoint-8").is_dir()


def test_a_warm_restart_runs_the_schedule_again_from_its_step(tmp_path, data):
    # A run whose cosine has ended goes on under its own step count with the schedule restarted (`--lr_cycle_start`):
    # warm-up again, a new cosine to the new last step; the card says where it restarted.
    first, second, _ = train_then_continue(tmp_path, data, 4, 10, **{"--initial_step": "4", "--lr_cycle_start": "4"})
    ended, rates = learning_rates(first), learning_rates(second)
    assert sorted(rates) == list(range(5, 11))
    peak = max(rates.values())
    assert peak == pytest.approx(max(ended.values())) and peak > 10 * ended[4]  # the full rate after the warm-up
    assert rates[5] < peak and rates[10] < rates[7]  # warm-up, then down the new cosine
    assert "the schedule restarted at step 4" in (second / "README.md").read_text()


def ship(config: dict, path: Path, candidate: Path) -> list[dict]:
    """Trains the run `config` describes, ships it as `candidate` (scripts/ship_checkpoint.py, in this process,
    without the ONNX graph: the sprint's test ships one with it), and returns the validation records shipped beside
    the weights."""
    path.write_text(yaml.safe_dump(config))
    finished = run(["--config", str(path)])
    assert finished.returncode == 0, finished.stderr[-3000:]
    load_script(REPO / "scripts" / "ship_checkpoint.py").main([str(path), "--candidate", str(candidate), "--no-onnx"])
    lines = (candidate / "validation_history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_shipped_run_continued_from_its_weights_keeps_its_whole_validation_curve(tmp_path, data, capsys):
    config = {"task": "denoising", "dataset_name": str(data["train"]), "config_name": "mirnet-tiny",
              "train_batch_size": 2, "patch_size": 32, "sigma_range": [10, 30], "use_ema": True, "ema_decay": 0.5,
              "validation_dataset_name": str(data["validation"]), "validation_split": "train",
              "validation_level": 25, "validation_steps": 2, "checkpointing_steps": 2, "report_to": "none",
              "resume_from_checkpoint": "latest"}  # fmt: skip
    first = ship({**config, "output_dir": str(tmp_path / "first"), "max_train_steps": 4},
                 tmp_path / "first.yaml", tmp_path / "shipped-first")  # fmt: skip
    assert [record["step"] for record in first] == [2, 4]
    assert (tmp_path / "shipped-first" / "model.safetensors").is_file()
    assert not (tmp_path / "shipped-first" / "onnx").exists()  # --no-onnx
    # A baseline measured later reaches the card without the run: only its comparison table changes.
    shipped_card = tmp_path / "shipped-first" / "README.md"
    before = shipped_card.read_text()
    # The card names the hardware the run recorded (a GPU sprint's H200), not the default runs' CPU.
    hardware = [line for line in (tmp_path / "first" / "README.md").read_text().splitlines() if "| hardware |" in line]
    assert len(hardware) == 1 and hardware[0] in before and "torch" in hardware[0]
    methods = (("noisy input", 20.0), ("CBM3D (true sigma)", 29.5), ("MIRNet (ours)", 29.0))
    row = {"data": "CBSD68 sigma 25", "images": 3, "ssim": 0.5, "seconds_per_mp": 1.0}
    rows = [{**row, "method": method, "psnr": psnr} for method, psnr in methods]
    evaluation = tmp_path / "evaluation.json"
    shipper = load_script(REPO / "scripts" / "ship_checkpoint.py")
    refresh = [str(tmp_path / "first.yaml"), "--candidate", str(tmp_path / "shipped-first"), "--refresh-comparison"]
    with pytest.raises(SystemExit) as refused:
        shipper.main(refresh)
    assert refused.value.code == 2 and "needs --evaluation" in capsys.readouterr().err
    for cbm3d_psnr in (29.5, 29.6):  # inserted, then replaced
        rows[1]["psnr"] = cbm3d_psnr
        evaluation.write_text(json.dumps({"denoising": rows}))
        shipper.main([*refresh, "--evaluation", str(evaluation)])
        after = shipped_card.read_text()
        table = after[after.index("### Against classical methods") : after.index("### Validation curve")]
        assert f"| CBSD68 sigma 25 | CBM3D (true sigma) | 3 | {cbm3d_psnr:.2f} |" in table
        assert after.replace(table, "") == before and "CBM3D" not in before
    # Its checkpoints lost, the run goes on from the shipped weights in a new folder.
    continued = {"output_dir": str(tmp_path / "second"), "max_train_steps": 8,
                 "model_name_or_path": str(tmp_path / "shipped-first"), "initial_step": 4, "seed": 1}  # fmt: skip
    second = ship({**config, **continued}, tmp_path / "second.yaml", tmp_path / "shipped-second")
    assert [record["step"] for record in second] == [2, 4, 6, 8]
    assert second[:2] == first  # the earlier curve as it was shipped
    card = (tmp_path / "shipped-second" / "README.md").read_text()
    assert "| 2 | " in card and "| 8 | " in card
    assert (tmp_path / "shipped-second" / "validation_curve.svg").read_text().count("<circle") == 4
    # The card's history belongs to the folder: shipping again into it keeps the section, below the new card.
    history = "### History\n\n- Tried a warm restart; not shipped (PolyU -0.1 dB).\n"
    (tmp_path / "shipped-second" / "README.md").write_text(card + "\n" + history)
    ship({**config, **continued}, tmp_path / "second.yaml", tmp_path / "shipped-second")
    again = (tmp_path / "shipped-second" / "README.md").read_text()
    assert again.endswith(history) and again.count("### History") == 1 and "| 8 | " in again
    # Continued at another level (a fork to another setting), its curve is its own: sigma 15's PSNR is not
    # sigma 25's.
    forked = {**continued, "output_dir": str(tmp_path / "third"), "validation_level": 15}
    third = ship({**config, **forked}, tmp_path / "third.yaml", tmp_path / "shipped-third")
    assert [record["step"] for record in third] == [6, 8]
    assert third[0]["validation/input_psnr"] > first[0]["validation/input_psnr"] + 3
    assert "(sigma 15)" in (tmp_path / "shipped-third" / "README.md").read_text()  # the curve's own setting


def test_yaml_config_sets_defaults_and_the_command_line_wins(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"task": "super-resolution", "dataset_name": "x", "output_dir": "o",
                                      "scales": [2, 4], "max_train_steps": 7}))  # fmt: skip
    args = parse_args(["--config", str(config), "--max_train_steps", "9"])
    assert (args.task, args.scales, args.max_train_steps, args.learning_rate) == ("super-resolution", [2, 4], 9, 2e-4)
    config.write_text("taks: denoising\n")
    with pytest.raises(SystemExit):
        parse_args(["--config", str(config)])
    # YAML 1.1 reads a bare `no` as False; the flag's word comes back, and a bool flag stays a bool.
    config.write_text("task: denoising\ndataset_name: x\noutput_dir: o\nmixed_precision: no\nuse_ema: false\n")
    parsed = parse_args(["--config", str(config)])
    assert (parsed.mixed_precision, parsed.use_ema) == ("no", False)


def test_shipped_configs_parse():
    for path in sorted((REPO / "training" / "configs").glob("*.yaml")):
        args = parse_args(["--config", str(path)])
        assert args.task in ("denoising", "super-resolution", "low-light-enhancement"), path
        if args.initial_step:  # a run that goes on from shipped weights names the step they were shipped at
            card = (REPO / args.model_name_or_path / "README.md").read_text()
            assert f"the weight average (EMA, decay 0.999) at step {args.initial_step} |" in card, path


def test_a_checkpoint_is_found_by_path_by_name_in_its_run_or_as_latest(tmp_path):
    from mirnet_hf.training import find_checkpoint

    run = tmp_path / "run"
    for step, complete in ((500, True), (1000, True), (1500, False)):  # 1500: killed while saving
        (run / f"checkpoint-{step}").mkdir(parents=True)
        if complete:
            (run / f"checkpoint-{step}" / "COMPLETE").write_text("{}")
    assert find_checkpoint(run, "latest") == run / "checkpoint-1000"
    assert find_checkpoint(run, "checkpoint-500") == run / "checkpoint-500"
    assert find_checkpoint(run, str(run / "checkpoint-500")) == run / "checkpoint-500"
    assert find_checkpoint(tmp_path / "empty", "latest") is None
    with pytest.raises(FileNotFoundError, match="'checkpoint-9' is neither .* checkpoint-500, checkpoint-1000"):
        find_checkpoint(run, "checkpoint-9")


def test_bad_flags_name_the_bad_value_and_what_is_valid(capsys):
    base = ["--task", "denoising", "--dataset_name", "x", "--output_dir", "o"]
    for flags, message in (
        (["--sigma_range", "30", "10"], "--sigma_range 30.0 10.0 is not valid; give two values, low then high"),
        (["--exposure_range", "0.1"], "--exposure_range 0.1 is not valid"),
        (["--max_train_steps", "0"], "--max_train_steps 0 is not valid; it must be at least 1"),
        (["--lr_scheduler", "linear"], "invalid choice: 'linear' (choose from 'cosine', 'constant')"),
        (["--initial_step", "5"], "--initial_step 5 needs --model_name_or_path"),
        (["--model_name_or_path", "m", "--initial_step", "1000"], "--initial_step 1000 is not valid; it must be 0"),
        (["--max_train_steps", "10", "--lr_cycle_start", "10"], "--lr_cycle_start 10 is not valid; it must be 0"),
    ):
        with pytest.raises(SystemExit):
            parse_args(base + flags)
        assert message in capsys.readouterr().err, flags


def test_validation_at_extra_levels_logs_each_level(tmp_path, data):
    output = tmp_path / "run"
    extra = {
        "--validation_dataset_name": str(data["validation"]),
        "--validation_split": "train",
        "--validation_level": "25",
        "--extra_validation_levels": ["10", "50"],
        "--validate_real_grain": "true",
        "--validation_steps": "2",
    }
    finished = run(base_args(data, output, steps=2, **extra))
    assert finished.returncode == 0, finished.stderr[-3000:]
    records = [json.loads(line) for line in (output / "logs" / "history.jsonl").read_text().splitlines()]
    validation = {key: value for record in records for key, value in record.items() if "validation" in key}
    inputs = [validation[f"validation/{name}input_psnr"] for name in ("sigma 10/", "", "sigma 50/")]
    assert inputs == sorted(inputs, reverse=True), inputs  # noisier inputs, lower PSNR: each level is its own
    assert {"validation/psnr", "validation/sigma 10/psnr", "validation/sigma 50/psnr"} <= set(validation)
    assert "(sigma 50)" in finished.stderr  # the logged table lists every level
    assert "(real grain)" in finished.stderr and validation["validation/real grain/input_psnr"] not in inputs


def test_a_model_fine_tuned_to_another_scale_records_that_scale(tmp_path):
    """The x3 model forked from the joint one (saved with upscale 2) must say x3, or its folder's pipeline and
    image processor would upsample x2."""
    from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
    from mirnet_hf.training import build_model

    config = MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1, task="super-resolution", upscale=2)
    MIRNetForImageRestoration(config).save_pretrained(tmp_path / "joint")
    base = ["--task", "super-resolution", "--dataset_name", "x", "--output_dir", "o"]
    fork = build_model(parse_args([*base, "--model_name_or_path", str(tmp_path / "joint"), "--scales", "3"]))
    assert fork.config.upscale == 3
