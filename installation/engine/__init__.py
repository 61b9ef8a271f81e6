"""The engine: latents in, frames out, off the display's thread.

``bundle`` reads and ``bundle_check`` checks a model bundle (``bundle_watch`` notices when it
changes on disk); ``pipeline`` chains its stages on a ``backend`` (``gpu/`` for TensorRT), and
``ladder`` climbs down the backends that fail; ``paint`` turns the score's frame plans into
pictures; ``worker`` fills the bounded, timestamped ``frames`` queue under the
``supervisor``'s restarts, and ``quality`` leaves out the last stage while generation is too
slow. ``convention`` and ``faults`` are their helpers.
"""
