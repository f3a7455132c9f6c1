"""TensorBoard event files for a run folder (train.tensorboard), written with tensorboardX.

tensorboardX is imported only when a run writes events, so the rest of the project never needs it.
"""
from pathlib import Path

from common.errors import UserError

EVENT_GLOB = "events.out.tfevents.*"


def open_writer(folder):
    """A tensorboardX SummaryWriter writing into `folder` (after removing an earlier run's event files)."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise UserError("train.tensorboard=true needs the package tensorboardX; pip install -r requirements.txt, "
                        "or turn it off with --set train.tensorboard=false") from None
    folder = Path(folder)
    for stale in folder.glob(EVENT_GLOB):
        stale.unlink()
    return SummaryWriter(logdir=str(folder), flush_secs=30)
