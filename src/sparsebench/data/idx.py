"""MNIST and Fashion-MNIST from their four IDX files, gzipped or not.

The files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each possibly with
``.gz``) are looked for in ``DATA/<name>/`` and then in the folder torchvision
leaves (``DATA/MNIST/raw/``, ``DATA/FashionMNIST/raw/``). Images come out as
uint8 ``(N, 1, 28, 28)``, labels as int64 0..9. The format is checked (magic
number, dimensions, exact length, label range), never a checksum: a re-packed
copy or a subset loads.

The IDX format: a 4-byte magic number ``00 00 08 D`` (``08``: unsigned bytes; ``D``:
the number of dimensions), ``D`` big-endian 32-bit sizes, then the values.

>>> header = bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big")
>>> parse_idx(header + bytes([1, 2, 9]), "mnist", Path("labels"), 1).tolist()
[1, 2, 9]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import bad_file, first_existing, missing_files, read_bytes
from .registry import RawData, register_file_dataset

#: The four files, in the order of the arrays a loader returns.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IMAGE_SIDE = 28
N_CLASSES = 10
#: The IDX type code of unsigned bytes, the only one MNIST-format files use.
UBYTE = 0x08
#: Each dataset's folder names under the data folder (its own, then torchvision's) and where it is published.
SOURCES = {
    "mnist": (("mnist", "MNIST/raw"), "the four MNIST IDX files from https://yann.lecun.com/exdb/mnist/ "
              "(mirror: https://ossci-datasets.s3.amazonaws.com/mnist/)"),
    "fashion-mnist": (("fashion-mnist", "FashionMNIST/raw"), "the four Fashion-MNIST IDX files from "
                      "https://github.com/zalandoresearch/fashion-mnist (files: http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/)"),
}


def parse_idx(data: bytes, dataset: str, path: Path, ndim: int) -> np.ndarray:
    """An IDX file's values as a uint8 array of ``ndim`` dimensions; any other layout refused in one line."""
    expected = f"an IDX file of unsigned bytes with {ndim} dimension{'s' if ndim > 1 else ''} (magic 0x{UBYTE << 8 | ndim:08x})"
    if len(data) < 4:
        raise bad_file(dataset, path, f"is {len(data)} bytes long, too short for an IDX header", expected)
    magic = int.from_bytes(data[:4], "big")
    if data[:3] != bytes([0, 0, UBYTE]) or data[3] != ndim:
        raise bad_file(dataset, path, f"has the magic number 0x{magic:08x}", expected)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise bad_file(dataset, path, f"is {len(data)} bytes long, too short for its {header}-byte header", expected)
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    size = header + int(np.prod(shape, dtype=object))
    if len(data) != size:
        raise bad_file(dataset, path, f"is {len(data)} bytes long but its header {list(shape)} needs {size} "
                       f"({'truncated' if len(data) < size else 'trailing bytes'})", expected)
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def locate_idx(name: str):
    """The ``locate`` of an MNIST-format dataset: the first of its folders that holds all four files."""
    folders, get = SOURCES[name]

    def locate(data_dir: tuple[Path, str]) -> tuple[Path, ...]:
        places = [data_dir[0] / folder for folder in folders]
        for place in places:
            found = [first_existing(place, (base, base + ".gz")) for base in IDX_FILES]
            if all(found):
                return tuple(found)  # type: ignore[arg-type]
        # Name what is missing in the folder that holds the most of the four (the first, if none does).
        best = max(places, key=lambda place: sum(first_existing(place, (b, b + ".gz")) is not None for b in IDX_FILES))
        wanted = [f"{base}[.gz]" for base in IDX_FILES if first_existing(best, (base, base + ".gz")) is None]
        ordered = [best] + [p for p in places if p != best]
        return_hint = f"{get}, gzipped or not, in {data_dir[0] / folders[0]}"
        raise missing_files(name, wanted, ordered, data_dir, return_hint)

    return locate


def read_idx(name: str):
    """The ``read`` of an MNIST-format dataset: images ``(N, 1, 28, 28)`` uint8, labels int64 in 0..9."""

    def read(files: tuple[Path, ...], data_seed: int) -> RawData:
        arrays = []
        for path, is_images in zip(files, (True, False, True, False)):
            values = parse_idx(read_bytes(name, path), name, path, 3 if is_images else 1)
            if is_images:
                if values.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
                    raise bad_file(name, path, f"holds images of {values.shape[1]}x{values.shape[2]} pixels",
                                   f"{IMAGE_SIDE}x{IMAGE_SIDE} images, as {name} has")
                arrays.append(values.reshape(len(values), 1, IMAGE_SIDE, IMAGE_SIDE))
            else:
                if len(values) and int(values.max()) >= N_CLASSES:
                    raise bad_file(name, path, f"holds the label {int(values.max())}", f"labels 0..{N_CLASSES - 1}")
                arrays.append(values.astype(np.int64))
        for images, labels, (image_file, label_file) in ((arrays[0], arrays[1], files[:2]), (arrays[2], arrays[3], files[2:])):
            if len(images) != len(labels):
                raise bad_file(name, label_file, f"holds {len(labels)} labels for the {len(images)} images of {image_file.name}",
                               "one label per image")
        return arrays[0], arrays[1], arrays[2], arrays[3]

    return read


for _name in SOURCES:
    # Images standardized per channel with training statistics (measured on MNIST-format data, an MLP after
    # one epoch on 2,000 examples: per-channel 78%, per-feature 76%, pixels/255 alone 45-55%).
    register_file_dataset(_name, locate_idx(_name), standardize="channel")(read_idx(_name))
