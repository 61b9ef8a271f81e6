"""The NVIDIA path: TensorRT engines built for this GPU, run on CUDA device memory.

Everything here depends on ``tensorrt`` and ``cuda-python``, which exist only on NVIDIA
machines (the project's ``gpu`` extra, ``pip install -e '.[gpu]'`` in a checkout or
``deploy/setup.sh --gpu`` on a kiosk; TensorRT's libraries come from NVIDIA's index).
The rest of the runtime imports these modules lazily, only when a show asks for TensorRT, and
the modules themselves import the NVIDIA packages inside functions, so a CPU-only exhibition
PC, a laptop for rehearsals and CI never need them; there they answer ``GpuUnavailable`` with
one line saying what is missing. ``engine_cache`` is pure Python and tested everywhere.
"""
