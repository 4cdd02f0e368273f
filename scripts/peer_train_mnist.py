#!/usr/bin/env python3
"""Peer baseline: train the CIFAR-style ResNet-20 (option-A shortcuts) on data/mnist-10k with
PyTorch, following residual's MNIST recipe exactly, so held-out accuracy and wall time can be
compared with `residual train` on the same model, data and recipe.

  /usr/bin/python3 scripts/peer_train_mnist.py --epochs 15 --threads 2

Recipe: 8010 training / 1990 held-out 28x28x1 images; per-channel mean/std (population std)
over the training set in 0..255 units, x = (x - mean) / std; training augmentation: zero-pad
the raw image by 2, crop 28x28 at a uniformly random offset (no flip), then normalise;
batch 128, shuffled each epoch, last incomplete batch dropped; SGD lr 0.1, momentum 0.9,
weight decay 5e-4 on all parameters, no Nesterov; per-step cosine schedule 0.1 -> 0 with a
linear warm-up over the first epoch; kaiming_normal_(fan_out, relu) convs, BN weight 1 bias 0,
default Linear init, BN momentum 0.1 eps 1e-5.

Each epoch line: mean train loss and accuracy over the epoch's batches (train mode), held-out
loss and top-1 (eval mode, running BN statistics), images/s of the training loop (data
preparation included), and the epoch's wall seconds (training loop + evaluation), as in
residual's trainer. train_seconds on the final line is the sum of the epoch seconds."""
import argparse, gzip, math, os, struct, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F


def keep_freed_memory():
    """Keeps memory PyTorch frees in the heap, as ../shared/peer/torch_train_bench.py does:
    glibc would unmap its large blocks and every step would fault them in again, which on
    these VMs cut PyTorch's training speed to a third. Called before any tensor exists."""
    import ctypes, sys
    if not sys.platform.startswith('linux'):
        return
    libc = ctypes.CDLL('libc.so.6')
    libc.mallopt(-4, 0)          # M_MMAP_MAX: nothing is mmapped
    libc.mallopt(-1, 1 << 34)    # M_TRIM_THRESHOLD: the heap is never given back
    libc.mallopt(-2, 1 << 28)    # M_TOP_PAD


keep_freed_memory()


class BasicA(nn.Module):
    def __init__(s, cin, cout, stride):
        super().__init__()
        s.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); s.b1 = nn.BatchNorm2d(cout)
        s.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(cout)
        s.pad = (stride != 1 or cin != cout); s.cout = cout; s.cin = cin

    def forward(s, x):
        y = F.relu(s.b1(s.c1(x))); y = s.b2(s.c2(y))
        sc = x
        if s.pad:
            sc = x[:, :, ::2, ::2]
            p = (s.cout - s.cin) // 2
            sc = F.pad(sc, (0, 0, 0, 0, p, p))
        return F.relu(y + sc)


class CifarResNet(nn.Module):
    def __init__(s, n=3, classes=10, in_ch=3):
        super().__init__()
        s.conv = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False); s.bn = nn.BatchNorm2d(16)
        layers = []; cin = 16
        for i, c in enumerate([16, 32, 64]):
            for j in range(n):
                stride = 2 if (j == 0 and i > 0) else 1
                layers.append(BasicA(cin, c, stride)); cin = c
        s.layers = nn.Sequential(*layers); s.fc = nn.Linear(64, classes)
        for m in s.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d):
                # momentum 0.1 and eps 1e-5 are PyTorch's defaults; set them explicitly anyway.
                m.momentum = 0.1; m.eps = 1e-5
                nn.init.ones_(m.weight); nn.init.zeros_(m.bias)

    def forward(s, x):
        x = F.relu(s.bn(s.conv(x))); x = s.layers(x)
        return s.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def read_idx(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    magic, count = struct.unpack('>II', data[:8])
    if magic == 2051:
        rows, cols = struct.unpack('>II', data[8:16])
        arr = np.frombuffer(data, dtype=np.uint8, offset=16)
        if arr.size != count * rows * cols:
            raise SystemExit(f"{path}: expected {count}x{rows}x{cols} bytes, found {arr.size}")
        return arr.reshape(count, rows, cols)
    if magic == 2049:
        arr = np.frombuffer(data, dtype=np.uint8, offset=8)
        if arr.size != count:
            raise SystemExit(f"{path}: expected {count} labels, found {arr.size}")
        return arr.astype(np.int64)
    raise SystemExit(f"{path}: unknown IDX magic {magic}")


def load(data_dir):
    xs = {}
    for split, prefix in (('train', 'train'), ('heldout', 't10k')):
        images = read_idx(os.path.join(data_dir, f'{prefix}-images-idx3-ubyte.gz'))
        labels = read_idx(os.path.join(data_dir, f'{prefix}-labels-idx1-ubyte.gz'))
        if len(images) != len(labels):
            raise SystemExit(f"{data_dir}: {prefix} has {len(images)} images, {len(labels)} labels")
        xs[split] = (images.astype(np.float32)[:, None, :, :], labels)  # N x 1 x 28 x 28, 0..255
    return xs


def lr_at(step, steps_per_epoch, epochs, base=0.1):
    e = step / steps_per_epoch
    cosine = 0.5 * base * (1.0 + math.cos(math.pi * e / epochs))
    return cosine * min(1.0, (step + 1) / steps_per_epoch)


def random_crop(batch, pad, rng):
    """batch: n x c x h x w raw (0..255) images. Zero-pad by `pad`, crop h x w at a uniformly
    random offset per image."""
    n, c, h, w = batch.shape
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=batch.dtype)
    padded[:, :, pad:pad + h, pad:pad + w] = batch
    oy = rng.integers(0, 2 * pad + 1, size=n)
    ox = rng.integers(0, 2 * pad + 1, size=n)
    out = np.empty_like(batch)
    for i in range(n):
        out[i] = padded[i, :, oy[i]:oy[i] + h, ox[i]:ox[i] + w]
    return out


def evaluate(model, x, y, batch=500):
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(x), batch):
            xb, yb = x[s:s + batch], y[s:s + batch]
            out = model(xb)
            loss_sum += F.cross_entropy(out, yb, reduction='sum').item()
            correct += (out.argmax(1) == yb).sum().item()
    return loss_sum / len(x), correct / len(x)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--epochs', type=int, default=15)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--data', default=os.path.join(repo, 'data', 'mnist-10k'))
    ap.add_argument('--batch-size', type=int, default=128)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    d = load(a.data)
    xtr, ytr = d['train']
    xho, yho = d['heldout']
    mean = xtr.mean(axis=(0, 2, 3), dtype=np.float64)          # per channel, 0..255 units
    std = np.maximum(xtr.std(axis=(0, 2, 3), dtype=np.float64), 1e-6)  # population std
    mean_t = mean.astype(np.float32)[None, :, None, None]
    std_t = std.astype(np.float32)[None, :, None, None]
    x_ho = torch.from_numpy(((xho - mean_t) / std_t).astype(np.float32))
    y_ho = torch.from_numpy(yho)

    model = CifarResNet(n=3, classes=10, in_ch=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4,
                          nesterov=False)
    params = sum(p.numel() for p in model.parameters())
    steps_per_epoch = len(xtr) // a.batch_size  # drop_last
    print(f"peer torch {torch.__version__}: resnet20 (option A, in_ch=1) {params} parameters; "
          f"train {len(xtr)} held-out {len(xho)} images; mean {mean[0]:.4f} std {std[0]:.4f}; "
          f"{steps_per_epoch} steps/epoch; threads {a.threads}", flush=True)

    step, total_seconds, ho_top1 = 0, 0.0, float('nan')
    for epoch in range(a.epochs):
        start = time.perf_counter()
        model.train()
        perm = rng.permutation(len(xtr))
        loss_sum, correct, seen = 0.0, 0, 0
        for b in range(steps_per_epoch):
            idx = perm[b * a.batch_size:(b + 1) * a.batch_size]
            xb = random_crop(xtr[idx], 2, rng)
            xb = torch.from_numpy(((xb - mean_t) / std_t).astype(np.float32))
            yb = torch.from_numpy(ytr[idx])
            lr = lr_at(step, steps_per_epoch, a.epochs)
            for g in opt.param_groups:
                g['lr'] = lr
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            n = len(idx)
            loss_sum += loss.item() * n
            correct += (out.argmax(1) == yb).sum().item()
            seen += n
            step += 1
        train_s = time.perf_counter() - start
        ho_loss, ho_top1 = evaluate(model, x_ho, y_ho)
        seconds = time.perf_counter() - start
        total_seconds += seconds
        print(f"epoch {epoch + 1}/{a.epochs}  train loss {loss_sum / seen:.4f} acc {correct / seen:.4f}"
              f" | held-out loss {ho_loss:.4f} top1 {ho_top1:.4f} | {seen / train_s:.0f} img/s"
              f"  lr {lr:.5g}  {seconds:.1f} s", flush=True)
    print(f"peer torch {torch.__version__} model=resnet20 epochs={a.epochs} threads={a.threads} "
          f"heldout_top1={ho_top1:.4f} train_seconds={total_seconds:.1f}", flush=True)


if __name__ == "__main__":
    main()
