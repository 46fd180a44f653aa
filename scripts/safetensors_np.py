"""Reads and writes safetensors files with numpy alone, for PyTorch versions without the
`safetensors` package (Debian's torch 1.13). The format: a little-endian u64 header length, a
JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then the bytes.

    import torch, safetensors_np as st
    sd = {k: torch.from_numpy(v) for k, v in st.load("ckpt.safetensors").items() if not k.startswith("optimizer.")}
    model.load_state_dict(sd, strict=True)
    st.save("model.safetensors", {k: v.numpy() for k, v in model.state_dict().items()})
"""

import json
import struct

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def load(path, with_metadata=False):
    """{name: numpy array} (and the __metadata__ strings when with_metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        data = np.frombuffer(raw, dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"), count=(end - begin) // np.dtype(DTYPES[info["dtype"]]).itemsize, offset=8 + n + begin)
        tensors[name] = data.reshape(info["shape"]).copy()
    return (tensors, metadata) if with_metadata else tensors


def save(path, tensors, metadata=None):
    """Writes {name: numpy array (or anything np.asarray takes, a CPU torch tensor included)}."""
    arrays = {k: np.require(np.asarray(v), requirements="C") for k, v in tensors.items()}  # keeps 0-d shapes
    # Larger elements first, then by name, so every tensor is aligned to its element size.
    order = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))
    header, offset = {}, 0
    for name in order:
        a = arrays[name]
        header[name] = {"dtype": NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in order:
            f.write(arrays[name].astype(arrays[name].dtype.newbyteorder("<"), copy=False).tobytes())
