# The two README commands:  `make run`  (set up, then the main job)  and  `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.14.1
TORCHVISION ?= torchvision==0.29.1
JOBS ?= 2
STAMP := $(VENV)/.gxnor-installed

.PHONY: setup run test pytest ctest ctest-sanitize lint bench clean gpu-check

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --no-cache-dir --upgrade pip

$(STAMP): $(BIN)/python setup.py pyproject.toml $(shell find csrc -type f)
	@free=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); \
	  if [ "$$free" -lt 8 ]; then echo "warning: $$free GiB free here; the venv needs about 6.5 GiB (torch 2.14.1 + CUDA libs)"; fi
	$(BIN)/pip install -q --no-cache-dir "$(TORCH)" $(TORCHVISION) numpy tqdm tabulate matplotlib pytest ruff ninja cmake \
	    scikit-learn clang-format transformers
	MAX_JOBS=$(JOBS) $(BIN)/pip install -v --no-build-isolation --no-deps -e . 2>&1 | grep "gxnor_cuda setup" || true
	$(BIN)/python -c "import gxnor_cuda"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/python -m gxnor_cuda
	$(BIN)/python -m gxnor_cuda.train --dataset mnist --quick

ctest: setup
	$(BIN)/cmake -S . -B build/cmake -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(BIN))/ninja > build-cmake.log 2>&1 || (cat build-cmake.log; exit 1)
	$(BIN)/cmake --build build/cmake -j $(JOBS)
	cd build/cmake && $(abspath $(BIN))/ctest --output-on-failure

ctest-sanitize: setup
	$(BIN)/cmake -S . -B build/cmake-asan -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(BIN))/ninja \
	    -DGXNOR_SANITIZE=ON -DGXNOR_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug > build-asan.log 2>&1 || (cat build-asan.log; exit 1)
	$(BIN)/cmake --build build/cmake-asan -j $(JOBS)
	cd build/cmake-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(abspath $(BIN))/ctest --output-on-failure

pytest: setup
	GXNOR_REQUIRE_BACKENDS=cpp,triton $(BIN)/python -m pytest -q tests

lint: setup
	$(BIN)/ruff check gxnor_cuda tests bench examples

test: setup lint ctest ctest-sanitize pytest

bench: setup
	$(BIN)/python bench/bench_pack.py
	$(BIN)/python bench/bench_gemm.py
	$(BIN)/python bench/bench_dst.py
	$(BIN)/python bench/bench_conv.py
	$(BIN)/python bench/bench_conv_pool.py
	$(BIN)/python bench/bench_train.py --install
	$(BIN)/python bench/bench_train.py --nets cifar --batches 100 --rounds 8 --steps 2 --name bench_train_cifar
	$(BIN)/python bench/bench_convert.py
	$(BIN)/python bench/bench_infer.py
	$(BIN)/python bench/compiled_kernels.py

# On a machine with a GPU, with its own Python as it is (no venv, no downloads): build for the local
# architecture only, then tests, GPU benchmarks and one MNIST epoch (bench/gpu_check.py).
GPU_PY ?= python3
gpu-check:
	TORCH_CUDA_ARCH_LIST=$$($(GPU_PY) -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())") \
	  MAX_JOBS=16 $(GPU_PY) -m pip install -q --no-build-isolation --no-deps -e . 2>&1 | tail -3
	$(GPU_PY) bench/gpu_check.py

clean:
	rm -rf build build-*.log gxnor_cuda/*.so *.egg-info
