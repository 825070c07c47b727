"""Runs the trainer, then writes what this process ended with to OUTPUT_DIR/rank-N.json (for the
multi-process test: both ranks must have stepped, read different data, and hold the same weights)."""

import hashlib
import json
import sys
from pathlib import Path

from mirnet_hf.training import Trainer, parse_args


def main() -> None:
    args = parse_args(sys.argv[1:])
    trainer = Trainer(args)
    seen: dict[str, list[str]] = {}
    make_item = trainer.patches.make_item

    def recording_make_item(example, epoch, index):
        seen.setdefault(str(epoch), []).append(Path(example["image"]["path"]).name)
        return make_item(example, epoch, index)

    trainer.patches.make_item = recording_make_item
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
        "stream_positions": [list(p) for p in trainer.stream_positions],
        "weights_sha256": digest.hexdigest(),
        "seen": seen,
    }
    Path(args.output_dir, f"rank-{report['rank']}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
