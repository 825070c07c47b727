"""Train or fine-tune MIRNet: `accelerate launch training/train.py --config training/configs/denoising.yaml`.

All the logic lives in `mirnet_hf.training`; `python training/train.py --help` lists the flags.
"""

import sys

from mirnet_hf.training import main

if __name__ == "__main__":
    sys.exit(main())
