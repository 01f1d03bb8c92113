"""Datasets as fixed host splits (TFDS by name, the embedded digits, image folders) and their
device-resident form, sampled and augmented inside jit."""
from jaxsets.data.device import DeviceSet, put_on_devices
from jaxsets.data.loading import load_dataset, load_generator_pool
from jaxsets.data.types import DatasetSplits, ImageSet

__all__ = ["DatasetSplits", "DeviceSet", "ImageSet", "load_dataset", "load_generator_pool",
           "put_on_devices"]
