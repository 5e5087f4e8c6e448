"""Model input from a user's images: the run's own evaluation transform, for any image.

:func:`prepare_images` gives exactly the tensor that evaluation fed the model, reusing the data
modules' functions rather than a copy of their rules:

- faces and MNIST / Fashion-MNIST: every image becomes 8-bit gray at the stored size as
  training decoded it (:func:`prunetui.data.faces.gray_pixels`: Pillow ``convert("L")``, then
  Pillow's bilinear resize, antialiased when shrinking, only when the size differs). The stored
  size is ``data.image_size`` for faces and 28 for MNIST / Fashion-MNIST (their own 28x28
  images pass unchanged). An image that is not square is cut to its centre square first
  (prepared faces and the digits are square). Faces: centre ``data.crop`` square and
  normalization with the training set's mean and std (:func:`prunetui.data.faces.eval_pixels`);
  MNIST: :func:`prunetui.data.mnist.normalize`;
- image folders (``folder``) and CIFAR-10/100: every image is decoded as the folder loader
  decodes its files (:func:`prunetui.data.folder.decode_file` for paths: EXIF orientation,
  16-bit stretched, transparency onto white; :func:`prunetui.data.folder.photo_pixels` for
  Pillow images and tensors), its centre square resized to the stored size with the run's
  channels (folder: ``data.image_size`` and ``data.channels``; CIFAR: 32x32 RGB, so the
  dataset's own images pass unchanged), then the centre ``data.crop`` square (CIFAR: all 32)
  normalized per channel as :class:`prunetui.data.images.ImageData` does it (folder: the
  training set's statistics, recorded in the export; CIFAR: ``prunetui.data.cifar``'s
  constants).

Accepted images: a tensor of 0-255 pixel values (uint8 or float; ``H x W``, ``C x H x W`` with
C = 1, 3 or 4, a batch ``N x C x H x W``, or a batch ``N x H x W`` of gray images when the
first of three dimensions is not 1, 3 or 4), a Pillow image (any mode), a path, or a list of
these (in a list, a ``3 x H x W`` or ``4 x H x W`` tensor is one image). A tensor already at
the stored size and channels is taken as stored. For a gray model (MNIST, faces) a
``3 x H x W`` or ``4 x H x W`` tensor on its own is refused: it reads as one colour image or as
three or four gray ones (MNIST's own ``data[:3]``), and guessing would silently answer for the
wrong number of images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from prunetui.export.fileformat import ExportError

MNIST_SIZE = 28
PHOTO_DATASETS = ("folder", "cifar10", "cifar100")  # colour-capable, decoded as photos
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _one_image(t: torch.Tensor, channels: int, listed: bool) -> bool:
    """Whether a tensor is one image rather than a batch (three dimensions: one ``C x H x W``
    image when C is 1, 3 or 4, as in torchvision, else a batch ``N x H x W`` of gray images)."""
    if t.dim() != 3:
        return t.dim() == 2
    if t.shape[0] not in _MODES or t.shape[0] == 2:
        return False
    if t.shape[0] > 1 and channels == 1 and not listed:
        n = t.shape[0]
        raise ExportError(
            f"A {n} x {t.shape[1]} x {t.shape[2]} tensor is ambiguous for this gray model: one "
            f"colour image, or {n} gray images? Pass a batch as N x 1 x H x W (images[:, None]) "
            "and one colour image as 1 x C x H x W (image[None]) or in a list.")
    return True


def _items(images: Any, channels: int, listed: bool = False) -> list[Any]:
    """One entry per image: a path, a Pillow image, or a tensor ``H x W`` / ``C x H x W``
    (``channels``: what the model reads, 1 for gray)."""
    if isinstance(images, (str, Path)):
        return [Path(images)]
    if isinstance(images, torch.Tensor):
        if _one_image(images, channels, listed):
            return [images]
        if images.dim() in (3, 4):
            return list(images.unbind(0))
        raise ExportError(f"An image tensor must be H x W, C x H x W or N x C x H x W, not "
                          f"{tuple(images.shape)}.")
    if isinstance(images, Sequence):
        return [item for entry in images for item in _items(entry, channels, listed=True)]
    if hasattr(images, "convert") and hasattr(images, "size"):  # a Pillow image
        return [images]
    raise ExportError(f"Cannot read an image from {type(images).__name__}: pass tensors, "
                      "Pillow images or paths.")


def _open(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise ExportError(f"Cannot read the image {path} ({err}).") from err


def _to_pillow(t: torch.Tensor) -> Any:
    from PIL import Image

    if t.dtype != torch.uint8:
        t = t.detach().float().clamp(0, 255).round().to(torch.uint8)
    t = t.detach().cpu()
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]
    if t.dim() == 2:
        return Image.fromarray(t.numpy())
    if t.shape[0] not in _MODES:
        raise ExportError(f"An image needs 1, 2, 3 or 4 channels, not {t.shape[0]}.")
    return Image.fromarray(t.permute(1, 2, 0).contiguous().numpy())


def _stored(item: Any, size: int) -> torch.Tensor:
    """One image as training stored it: ``[1, size, size]`` (uint8, or float kept as given)."""
    from prunetui.data.faces import gray_pixels

    if isinstance(item, Path):
        item = _open(item)
    if isinstance(item, torch.Tensor):
        gray = item if item.dim() == 2 else item[0] if item.shape[0] == 1 else None
        if gray is not None and tuple(gray.shape) == (size, size) \
                and (gray.dtype == torch.uint8 or gray.is_floating_point()):
            return gray.detach().cpu().unsqueeze(0)  # already what decoding would give
        item = _to_pillow(item)
    width, height = item.size
    if width != height:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        item = item.crop((left, top, left + side, top + side))
    return gray_pixels(item, size)


def stored_images(images: Any, size: int) -> torch.Tensor:
    """Images as training decoded them: ``[N, 1, size, size]`` (uint8 unless floats given)."""
    items = [_stored(item, size) for item in _items(images, channels=1)]
    if not items:
        raise ExportError("No images given.")
    if any(t.dtype != torch.uint8 for t in items):
        items = [t.float() for t in items]
    return torch.stack(items)


def _photo(item: Any, size: int, channels: int) -> torch.Tensor:
    """One image as the folder loader stores it: ``[channels, size, size]``."""
    from prunetui.data.folder import decode_file, photo_pixels

    if isinstance(item, Path):
        decoded = decode_file(item, size, channels)
        if not isinstance(decoded, torch.Tensor):  # a Skip: prepare's reason
            raise ExportError(f"Cannot read the image {item} ({decoded.message}).")
        return decoded
    if isinstance(item, torch.Tensor):
        t = item.detach().cpu()
        t = t.unsqueeze(0) if t.dim() == 2 else t
        if tuple(t.shape) == (channels, size, size) \
                and (t.dtype == torch.uint8 or t.is_floating_point()):
            return t  # already what decoding would give
        item = _to_pillow(item)
    return photo_pixels(item, size, channels)


def stored_photos(images: Any, size: int, channels: int) -> torch.Tensor:
    """Images as the folder loader stores them: ``[N, channels, size, size]`` (uint8 unless
    floats given)."""
    items = [_photo(item, size, channels) for item in _items(images, channels)]
    if not items:
        raise ExportError("No images given.")
    if any(t.dtype != torch.uint8 for t in items):
        items = [t.float() for t in items]
    return torch.stack(items)


def _per_channel(norm: Any, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std of a recorded normalization, one value per channel."""
    def values(key: str) -> tuple[float, ...]:
        v = norm[key]
        return tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else (float(v),)

    mean, std = values("mean"), values("std")
    if len(mean) != channels or len(std) != channels:
        raise ExportError(f"This export records an input normalization for {len(mean)} "
                          f"channels, but its images have {channels}; export it again with: "
                          "prunetui export RUN OUT.pt")
    return mean, std


def photo_input(meta: dict[str, Any], images: Any) -> torch.Tensor:
    """Folder and CIFAR models: the stored square, centre crop, per-channel normalization."""
    from prunetui.data.faces import eval_pixels
    from prunetui.data.images import stats_tensors

    data = meta["config"]["data"]
    if data["dataset"] == "folder":
        size, channels, crop = int(data["image_size"]), int(data["channels"]), int(data["crop"])
        norm = meta.get("input_normalization")
        if not isinstance(norm, dict) or "mean" not in norm or "std" not in norm:
            raise ExportError("This export does not know its input normalization (the image "
                              "folder was not readable when it was written); export it again "
                              "with: prunetui export RUN OUT.pt")
        mean, std = _per_channel(norm, channels)
    else:
        from prunetui.data.cifar import NORMALIZATION, SIZE

        size, channels, crop = SIZE, 3, SIZE
        mean, std = NORMALIZATION[data["dataset"]]
    x = stored_photos(images, size, channels)
    return eval_pixels(x, crop, *stats_tensors(mean, std))


def prepare_images(meta: dict[str, Any], images: Any) -> torch.Tensor:
    """The model input of ``images``, exactly as the run's evaluation made it from its data."""
    data = meta["config"]["data"]
    dataset = data["dataset"]
    if dataset in PHOTO_DATASETS:
        return photo_input(meta, images)
    if dataset == "faces":
        from prunetui.data.faces import eval_pixels

        norm = meta.get("input_normalization")
        if norm is None:
            raise ExportError("This export does not know its input normalization (the face "
                              "folder was not readable when it was written); export it again "
                              "with: prunetui export RUN OUT.pt")
        x = stored_images(images, int(data["image_size"]))
        return eval_pixels(x, int(data["crop"]), float(norm["mean"]), float(norm["std"]))
    from prunetui.data.mnist import normalize

    x = stored_images(images, MNIST_SIZE)
    return normalize(x[:, 0], dataset).reshape(len(x), *meta["input_shape"])


def meta_class_names(meta: dict[str, Any]) -> list[str]:
    """Class names in label order; ``str(index)`` for exports written without them."""
    count = int(meta["num_classes"])
    names = meta.get("class_names")
    if isinstance(names, list) and len(names) == count:
        return [str(n) for n in names]
    return [str(i) for i in range(count)]


__all__ = ["MNIST_SIZE", "PHOTO_DATASETS", "meta_class_names", "photo_input", "prepare_images",
           "stored_images", "stored_photos"]
