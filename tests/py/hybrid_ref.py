"""hybrid_ref.py - the PyTorch side of tests/t-hybrid.sh: the ResNet50 + ViT
hybrid of lib/nn/model.h written here with torch.nn (torchvision's resnet50
for the backbone, timm's ViT code for the rest: the same names), against
lib/nn driven through `tests/nn_hybrid parity`.

    hybrid_ref.py DRIVER WORKDIR CASE...     CASE = STAGE:D:L:H:R:N:H:W[:bf16]

Every model has the position grid of a 64 x 64 input; a case of another
size makes both sides resample it (bilinear, align_corners=False, as timm's
resample_abs_pos_embed with interpolation='bilinear').

For each case: the model made from a seed, with weights far from timm's
near-zero start so that every non-linear part matters (the transformer's
Linear layers keep torch's default, LayerNorm weights 0.5 to 1.5, biases
+-0.5, cls_token and pos_embed N(0, 0.5^2); batch norms given affine
weights and running statistics as tests/py/parity_models.py gives them),
saved as a state dict in safetensors with the metadata mura-train writes;
a random input batch x and upstream gradient dlogits.  The C driver loads
the file (configuration from the metadata, every name and shape must match,
nothing dropped).  Compared here:
  - the state's names and shapes are the reference's;
  - logits in evaluation mode (from an evaluation plan, and from a training
    plan) and in training mode: max |ours - torch| <= 1e-4 max |torch|;
  - every running statistic after the training forward within 1e-4;
  - every parameter's gradient from sum(dlogits * logits), training mode:
    max error <= 1e-3 of that tensor's largest magnitude, widened where a
    ReLU input of the backbone lies within rounding of its kink (see
    parity_models.py: the float64 gradient with that mask bit flipped sets
    the tolerance);
  - with the backbone frozen (evaluation mode, no gradient) and the
    transformer training, as mura-train's first phase: the logits and every
    gradient of the projection and the transformer, within 1e-4 and 1e-3;
  - our model file, as saved after the training forward, loads into the
    reference with load_state_dict(strict=True) and equals its state.
Dropout is 0: its masks are drawn from different generators (nn_hybrid's
own checks cover it).  A case ending in :bf16 runs ours with --precision
bf16 against PyTorch's CPU autocast (bfloat16) instead, every product of
the backbone, the projection and the transformer (attention's included) in
bf16, compared as parity_models.py's run_case_bf16 compares (logits,
running statistics, gradients, each against its own tolerance and beside
autocast's own error against fp32).  Prints PASS/FAIL lines.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_tool  # noqa: E402
from parity_models import (KINK_TAU, Kinks, bf16_verdicts, check_gradients, pick_input, rel,  # noqa: E402
                           run_driver, settle_bn, torch_pass, verdict, worst)

GRID_INPUT = 64  # every case's model has the position grid of this input size


class Attention(nn.Module):
    """timm's Attention (qkv_bias=True, no q/k norm), its forward written out."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden, p):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # the exact, erf form
        self.drop1 = nn.Dropout(p)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(p)

    def forward(self, x):
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class Block(nn.Module):
    """timm's pre-norm Block, LayerNorm eps 1e-6, proj_drop = drop = p."""

    def __init__(self, dim, heads, ratio, p):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.proj_drop = nn.Dropout(p)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * ratio, p)

    def forward(self, x):
        x = x + self.proj_drop(self.attn(self.norm1(x)))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """timm's HybridEmbed: a 1x1 convolution of the backbone's map."""

    def __init__(self, c, dim):
        super().__init__()
        self.proj = nn.Conv2d(c, dim, 1)

    def forward(self, f):
        return self.proj(f).flatten(2).transpose(1, 2)


def resample_abs_pos_embed(pos, grid, new):
    """timm's resample_abs_pos_embed (one prefix token) with bilinear."""
    if tuple(new) == tuple(grid):
        return pos
    prefix, g = pos[:, :1], pos[:, 1:]
    g = g.reshape(1, grid[0], grid[1], -1).permute(0, 3, 1, 2)
    g = F.interpolate(g, size=new, mode='bilinear', align_corners=False, antialias=False)
    g = g.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], -1)
    return torch.cat([prefix, g], dim=1)


def grid_of(size, stage):
    s = (size - 1) // 2 + 1          # conv1 7x7 s2 p3
    s = (s - 1) // 2 + 1             # maxpool 3x3 s2 p1
    for _ in range(stage - 1):       # a stride of 2 from layer2 on
        s = (s - 1) // 2 + 1
    return s


class Hybrid(nn.Module):
    """model.h's MURA_ARCH_HYBRID."""

    def __init__(self, stage, dim, depth, heads, ratio, grid, p=0.0):
        super().__init__()
        tv = torchvision.models.resnet50()
        self.stage, self.grid = stage, grid
        for name in ['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4'][:4 + stage]:
            setattr(self, name, getattr(tv, name))
        c = 1024 if stage == 3 else 2048
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid[0] * grid[1], dim))
        self.patch_embed = PatchEmbed(c, dim)
        self.blocks = nn.ModuleList([Block(dim, heads, ratio, p) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head_drop = nn.Dropout(p)
        self.head = nn.Linear(dim, 1)

    def backbone(self):
        return [self.conv1, self.bn1, self.maxpool] + [getattr(self, 'layer%d' % i) for i in
                                                       range(1, self.stage + 1)]

    def forward(self, x):
        f = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, self.stage + 1):
            f = getattr(self, 'layer%d' % i)(f)
        t = self.patch_embed(f)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1)
        t = t + resample_abs_pos_embed(self.pos_embed, self.grid, f.shape[2:])
        for b in self.blocks:
            t = b(t)
        return self.head(self.head_drop(self.norm(t)[:, 0])).flatten()


def make_model(stage, dim, depth, heads, ratio, n, seed):
    grid = (grid_of(GRID_INPUT, stage),) * 2
    torch.manual_seed(seed)
    net = Hybrid(stage, dim, depth, heads, ratio, grid)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
        net.cls_token.normal_(0, 0.5)
        net.pos_embed.normal_(0, 0.5)
        settle_bn(net, n, GRID_INPUT, GRID_INPUT)
    return net, grid


def metadata(stage, dim, depth, heads, ratio, grid):
    return {'format': 'mura-model 1', 'arch': 'hybrid', 'head': 'vit', 'dropout': '0',
            'input_size': '%dx%d' % (GRID_INPUT, GRID_INPUT), 'normalize_mean': '0.485,0.456,0.406',
            'normalize_std': '0.229,0.224,0.225', 'hybrid_stage': str(stage), 'vit_dim': str(dim),
            'vit_depth': str(depth), 'vit_heads': str(heads), 'vit_mlp': str(ratio),
            'vit_grid': '%dx%d' % grid}


def save_case(work, sd, shape, grid, x, dl):
    """The model (state dict sd, with the metadata of shape = STAGE, D, L, H, R
    and grid) and the input batch as the C driver reads them in work; their
    paths and the driver's output's."""
    paths = [os.path.join(work, f) for f in ('hybrid.safetensors', 'input.safetensors', 'out.safetensors')]
    st_tool.save(paths[0], {k: v.contiguous() for k, v in sd.items()}, metadata(*shape, grid))
    st_tool.save(paths[1], {'x': x, 'dlogits': dl})
    return paths


def run_case(driver, work, case):
    stage, dim, depth, heads, ratio, n, h, w = map(int, case.split(':'))
    tag = 'hybrid stage %d D%d L%d H%d R%d %dx%dx%d' % (stage, dim, depth, heads, ratio, n, h, w)
    net, grid = make_model(stage, dim, depth, heads, ratio, n, 20240607 + stage)
    sd = net.state_dict()
    kinks = Kinks(net)
    x, near, seed = pick_input(kinks, n, h, w, KINK_TAU)
    dl = torch.randn(n)
    model_path, input_path, out_path = save_case(work, sd, (stage, dim, depth, heads, ratio), grid, x, dl)

    ours_s = run_driver(driver, [model_path, input_path, out_path], tag)
    if ours_s is None:
        return
    out, _, _ = st_tool.load(out_path)

    ours = {k[len('state.'):]: tuple(v.shape) for k, v in out.items() if k.startswith('state.')}
    theirs = {k: tuple(v.shape) for k, v in sd.items()}
    verdict('parity %s: state names and shapes are the reference\'s' % tag, ours == theirs,
            '%d tensors' % len(theirs) if ours == theirs else
            'only ours: %s; only theirs: %s; shapes differ: %s' % (
                sorted(set(ours) - set(theirs))[:4], sorted(set(theirs) - set(ours))[:4],
                [k for k in ours if k in theirs and ours[k] != theirs[k]][:4]))

    params = dict(net.named_parameters())
    le, lt, torch_s = torch_pass(net, x, dl)

    for key, what in (('logits_evalplan', 'evaluation plan'), ('logits_eval', 'training plan')):
        e = rel(out[key], le)
        verdict('parity %s: logits, evaluation mode, %s' % (tag, what), e <= 1e-4, 'max rel err %.2g' % e)
    e = rel(out['logits_train'], lt.detach())
    verdict('parity %s: logits, training mode (batch statistics)' % tag, e <= 1e-4, 'max rel err %.2g' % e)

    sd = net.state_dict()
    stats = [(k, out['state.' + k], v) for k, v in sd.items()
             if k.endswith('running_mean') or k.endswith('running_var')]
    e, bad = worst(stats, 1e-4)
    verdict('parity %s: %d running statistics after the training forward' % (tag, len(stats)), not bad,
            'worst rel err %.2g' % e if not bad else ', '.join(bad[:5]))

    check_gradients(tag, out, params, kinks, x, dl, near, seed)
    head = [k for k in params if not any(k.startswith(b) for b in
                                         ('conv1.', 'bn1.', 'layer1.', 'layer2.', 'layer3.', 'layer4.'))]
    e, bad = worst([(k, out['grad.' + k], params[k].grad) for k in head], 1e-3)
    verdict('parity %s: gradients of the %d projection and transformer parameters' % (tag, len(head)),
            not bad, 'worst %.2g of the tensor\'s max' % e if not bad else ', '.join(bad[:5]))

    # The first phase of training: backbone frozen (evaluation mode, no
    # gradient), the projection and the transformer training.
    net.zero_grad()
    for m in net.backbone():
        m.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    for k in head:
        params[k].requires_grad_(True)
    lf = net(x)
    (lf * dl).sum().backward()
    e = rel(out['logits_frozen'], lf.detach())
    verdict('parity %s: backbone frozen: logits' % tag, e <= 1e-4, 'max rel err %.2g' % e)
    e, bad = worst([(k, out['frozen_grad.' + k], params[k].grad) for k in head], 1e-3)
    verdict('parity %s: backbone frozen: gradients of the %d projection and transformer parameters'
            % (tag, len(head)), not bad and all(('frozen_grad.' + k) in out for k in head)
            and not any(k.startswith('frozen_grad.layer') for k in out),
            'worst %.2g of the tensor\'s max' % e if not bad else ', '.join(bad[:5]))

    saved, meta, _ = st_tool.load(out_path + '.model')
    again = Hybrid(stage, dim, depth, heads, ratio, grid)
    try:
        again.load_state_dict(saved, strict=True)
        e = max(rel(saved[k].double(), v.double()) for k, v in sd.items())
        want = metadata(stage, dim, depth, heads, ratio, grid)
        same = all(meta.get(k) == want[k] for k in ('arch', 'head', 'hybrid_stage', 'vit_dim', 'vit_depth',
                                                   'vit_heads', 'vit_mlp', 'vit_grid'))
        ok, why = e <= 1e-4 and same, 'max rel err %.2g, metadata %s' % (
            e, ', '.join('%s=%s' % kv for kv in sorted(meta.items()) if kv[0] != 'normalize_mean'))
    except RuntimeError as exc:
        ok, why = False, str(exc).split('\n')[0]
    verdict('parity %s: our saved model loads into the reference, strict' % tag, ok, why)
    print('    %s: ours %.1f s (driver: load, 4 forwards, 2 backwards), torch %.1f s' % (tag, ours_s, torch_s))


def run_case_bf16(driver, work, case):
    stage, dim, depth, heads, ratio, n, h, w = map(int, case.split(':')[:8])
    tag = 'hybrid stage %d D%d L%d H%d R%d %dx%dx%d bf16' % (stage, dim, depth, heads, ratio, n, h, w)
    net, grid = make_model(stage, dim, depth, heads, ratio, n, 20240607 + stage)
    sd = net.state_dict()
    ref = Hybrid(stage, dim, depth, heads, ratio, grid)
    ref.load_state_dict(sd)
    x = torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(0))
    dl = torch.randn(n)
    model_path, input_path, out_path = save_case(work, sd, (stage, dim, depth, heads, ratio), grid, x, dl)
    ours_s = run_driver(driver, [model_path, input_path, out_path, 'bf16'], tag)
    if ours_s is None:
        return
    out, _, _ = st_tool.load(out_path)
    torch_s = bf16_verdicts(tag, out, net, net, ref, ref, x, dl)
    print('    %s: ours %.1f s, torch %.1f s' % (tag, ours_s, torch_s))


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    torch.set_num_threads(1)  # see parity_models.py
    for case in sys.argv[3:]:
        (run_case_bf16 if case.endswith(':bf16') else run_case)(sys.argv[1], sys.argv[2], case)


if __name__ == '__main__':
    main()
