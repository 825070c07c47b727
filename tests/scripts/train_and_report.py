"""Runs the trainer, then writes what this process ended with to OUTPUT_DIR/rank-N.json (for the
multi-process test: both ranks must have stepped, read different data, and hold the same weights)."""

import hashlib
import json
import sys
from pathlib import Path

from mirnet_hf.training import Trainer, TrainerCallback, parse_args


class RecordExamples(TrainerCallback):
    """Records the file name of every image each batch was cut from, per epoch."""

    def __init__(self):
        self.seen: dict[str, list[str]] = {}

    def on_batch(self, trainer, batch):
        dataset = trainer.data.patches.dataset
        for epoch, row in batch["examples"].tolist():
            self.seen.setdefault(str(epoch), []).append(Path(dataset[row]["image"]["path"]).name)


def main() -> None:
    args = parse_args(sys.argv[1:])
    recorder = RecordExamples()
    trainer = Trainer(args, callbacks=[recorder])
    trainer.train()
    model = trainer.accelerator.unwrap_model(trainer.model)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    report = {
        "rank": trainer.accelerator.process_index,
        "world_size": trainer.accelerator.num_processes,
        "step": trainer.state.step,
        "stream_positions": [list(p) for p in trainer.streams.stream_positions],
        "weights_sha256": digest.hexdigest(),
        "seen": recorder.seen,
    }
    Path(args.output_dir, f"rank-{report['rank']}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
