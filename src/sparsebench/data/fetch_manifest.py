"""What ``sparsebench data fetch`` downloads: per dataset, the files, their size and sha256, and where they come from.

Pinned here, in the package, so that a download is checked against values that did
not come from the same server. Each dataset has:

- ``url_base``: the official location (``--url-base`` names a mirror that holds the same file names);
- ``page``: where the distribution is published (said in messages);
- ``folder``: where the downloaded files are kept, under the data folder ("" for tarballs, which are
  unpacked into the data folder itself and then removed);
- ``files``: each downloaded file's ``name``, ``size`` (bytes) and ``sha256``; a tarball also has
  ``unpack``: the files it must unpack to (paths under the data folder, the ones the loaders read),
  each with its ``size`` and ``sha256``.

Where the values come from (the files cannot be downloaded on the machines that wrote this; each value
is quoted from published code that checks it):

- MNIST: the four ``.gz`` files' sha256 as TensorFlow Datasets, Keras and several other projects pin
  them; sizes likewise. Served from PyTorch's mirror (``yann.lecun.com`` refuses many clients).
- Fashion-MNIST: the sha256 the Fashion-MNIST files have in TensorFlow Datasets and torchvision's
  prototype datasets; served from the Fashion-MNIST repository on GitHub (the S3 website endpoint
  torchvision uses is plain HTTP).
- CIFAR-10/100: the **binary** distribution (no pickle to read), tarball sha256 as TensorFlow Datasets
  pins them; the unpacked files' sha256 as torchvision's Ruby port (``torchvision-ruby``) checks them after
  every extraction; their sizes follow from the format (10,000 records of 1 + 3,072 bytes; 50,000 and
  10,000 records of 2 + 3,072 bytes).
"""

from __future__ import annotations

from typing import Any

_MNIST_FILES = [
    {"name": "train-images-idx3-ubyte.gz", "size": 9_912_422,
     "sha256": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"},
    {"name": "train-labels-idx1-ubyte.gz", "size": 28_881,
     "sha256": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"},
    {"name": "t10k-images-idx3-ubyte.gz", "size": 1_648_877,
     "sha256": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"},
    {"name": "t10k-labels-idx1-ubyte.gz", "size": 4_542,
     "sha256": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"},
]

_FASHION_FILES = [
    {"name": "train-images-idx3-ubyte.gz", "size": 26_421_880,
     "sha256": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"},
    {"name": "train-labels-idx1-ubyte.gz", "size": 29_515,
     "sha256": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"},
    {"name": "t10k-images-idx3-ubyte.gz", "size": 4_422_102,
     "sha256": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"},
    {"name": "t10k-labels-idx1-ubyte.gz", "size": 5_148,
     "sha256": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"},
]

_CIFAR10_BATCH = 10_000 * (1 + 3072)
_CIFAR10_MEMBERS = {
    "cifar-10-batches-bin/data_batch_1.bin": "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    "cifar-10-batches-bin/data_batch_2.bin": "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    "cifar-10-batches-bin/data_batch_3.bin": "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    "cifar-10-batches-bin/data_batch_4.bin": "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    "cifar-10-batches-bin/data_batch_5.bin": "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
    "cifar-10-batches-bin/test_batch.bin": "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
}

MANIFEST: dict[str, dict[str, Any]] = {
    "mnist": {
        "url_base": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "page": "https://yann.lecun.com/exdb/mnist/",
        "folder": "mnist",
        "files": _MNIST_FILES,
    },
    "fashion-mnist": {
        "url_base": "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "page": "https://github.com/zalandoresearch/fashion-mnist",
        "folder": "fashion-mnist",
        "files": _FASHION_FILES,
    },
    "cifar10": {
        "url_base": "https://www.cs.toronto.edu/~kriz/",
        "page": "https://www.cs.toronto.edu/~kriz/cifar.html",
        "folder": "",
        "files": [
            {"name": "cifar-10-binary.tar.gz", "size": 170_052_171,
             "sha256": "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
             "unpack": {path: {"size": _CIFAR10_BATCH, "sha256": digest} for path, digest in _CIFAR10_MEMBERS.items()}},
        ],
    },
    "cifar100": {
        "url_base": "https://www.cs.toronto.edu/~kriz/",
        "page": "https://www.cs.toronto.edu/~kriz/cifar.html",
        "folder": "",
        "files": [
            {"name": "cifar-100-binary.tar.gz", "size": 168_513_733,
             "sha256": "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
             "unpack": {
                 "cifar-100-binary/train.bin": {"size": 50_000 * (2 + 3072),
                                                "sha256": "f31298fc616915fa142368359df1c4ca2ae984d6915ca468b998a5ec6aeebf29"},
                 "cifar-100-binary/test.bin": {"size": 10_000 * (2 + 3072),
                                               "sha256": "d8b1e6b7b3bee4020055f0699b111f60b1af1e262aeb93a0b659061746f8224a"},
             }},
        ],
    },
}

#: Datasets that read the files another one fetches (``cifar100-coarse`` reads cifar100's).
SAME_FILES = {"cifar100-coarse": "cifar100"}
