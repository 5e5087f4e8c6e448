# Quick start:  make run   (install, then open the app)
#               make test  (install, then run the test suite)
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
SHARED ?= ../shared/datasets
FASHION ?= /usr/share/datasets/fashion-mnist

.PHONY: install run test lint data bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Offline copies of MNIST / Fashion-MNIST go into data/ when this machine has them; otherwise
# the app's Data screen says how to get them (online, the first run downloads them).
data: install
	@if [ -f $(SHARED)/mnist-real/train-images-idx3-ubyte.gz ] && [ ! -f data/MNIST/raw/train-images-idx3-ubyte.gz ]; then \
		$(BIN)/prunetui data import $(SHARED)/mnist-real --root data; fi
	@if [ -f $(FASHION)/train-images-idx3-ubyte.gz ] && [ ! -f data/FashionMNIST/raw/train-images-idx3-ubyte.gz ]; then \
		$(BIN)/prunetui data import $(FASHION) --root data --dataset fashion-mnist; fi

run: install data
	$(BIN)/prunetui

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .

bench: install data
	$(BIN)/python benchmarks/train_speed.py --root data
