"""TensorBoard event files for a run folder (train.tensorboard), written with tensorboardX.

tensorboardX is imported only when a run writes events, so the rest of the project never needs it.
`read_scalars` reads an event file back ({tag: [(step, value), ...]}) without TensorBoard itself:
an event file is a sequence of records (length u64, crc u32, payload, crc u32), each payload an
`Event` protocol buffer.
"""
import struct
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


def event_files(folder):
    return sorted(Path(folder).glob(EVENT_GLOB))


def _records(path):
    data = Path(path).read_bytes()
    offset = 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        start = offset + 12
        if start + length + 4 > len(data):
            break  # a record still being written
        yield data[start:start + length]
        offset = start + length + 4


def read_scalars(path):
    """{tag: [(step, value), ...]} from one event file."""
    from tensorboardX.proto.event_pb2 import Event
    scalars = {}
    for record in _records(path):
        event = Event.FromString(record)
        for value in event.summary.value:
            if value.HasField("simple_value"):
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars
