"""Image files that readers must not take at face value: a decompression bomb, and a photo
whose EXIF orientation turns it."""

import struct
import zlib

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112  # the EXIF tag


def bomb_png(path, side=30000):
    """A PNG whose header says side x side greyscale pixels (900 megapixels at 30000): 74 bytes,
    no real pixel data. Pillow refuses it from its header, before decoding anything."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )
    return path


def turned_jpeg(path, stored: np.ndarray, orientation: int = 6):
    """`stored` (H, W, 3) as a JPEG with an EXIF orientation (6: a viewer turns it 90 degrees
    clockwise, and shows it H pixels wide and W high)."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)
    return path
