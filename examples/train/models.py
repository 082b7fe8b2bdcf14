"""models.py - the tiny networks, written to match what libllava runs (spec 4, 6):

- VisionTower: CLIP ViT (patch conv without bias, CLS first + learned positions, pre-LN,
  pre-norm blocks with quick-GELU MLPs, post-LN, projection of CLS for the contrastive loss).
  LLaVA uses the hidden state of the second-to-last layer: features() runs all blocks but
  the last and drops CLS; the exporter stores exactly those blocks.
- TextEncoder: a one-block transformer over caption tokens (mean-pooled), CLIP's text side.
- Projector: LLaVA-1.5 "mlp": Linear -> GELU (erf) -> Linear.
- Llama: RMSNorm, rotate-half RoPE as in HF (the exporter permutes Q/K rows into the GGUF's
  adjacent-pair layout), SwiGLU, output tied to token_embd, causal attention, KV cache for
  greedy decoding. Inputs are embeddings so image rows can be spliced in.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def normalize_images(u8):
    """uint8 [B,H,W,3] -> float [B,3,H,W] as the C preprocessor: /255 then (x-mean)/std."""
    x = u8.permute(0, 3, 1, 2).float() / 255.0
    m = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    s = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - m) / s


class VitBlock(nn.Module):
    def __init__(self, d, n_head, d_ff):
        super().__init__()
        self.n_head = n_head
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-5), nn.LayerNorm(d, eps=1e-5)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(d, d_ff), nn.Linear(d_ff, d)

    def forward(self, x):                                   # x [B,T,D]
        B, T, D = x.shape
        h = self.ln1(x)
        sh = lambda t: t.view(B, T, self.n_head, D // self.n_head).transpose(1, 2)  # noqa: E731
        q, k, v = sh(self.q(h)), sh(self.k(h)), sh(self.v(h))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D // self.n_head), -1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, D))
        return x + self.fc2(quick_gelu(self.fc1(self.ln2(x))))


class VisionTower(nn.Module):
    def __init__(self, image_size=64, patch=8, d=64, n_head=4, d_ff=256, n_layer=3, d_out=64):
        super().__init__()
        self.image_size, self.patch, self.d, self.n_head, self.d_ff = image_size, patch, d, n_head, d_ff
        self.n_patches = (image_size // patch) ** 2
        self.patch_embd = nn.Conv2d(3, d, patch, stride=patch, bias=False)
        self.class_embd = nn.Parameter(torch.randn(d) * 0.02)
        self.pos_embd = nn.Parameter(torch.randn(self.n_patches + 1, d) * 0.02)
        self.pre_ln = nn.LayerNorm(d, eps=1e-5)
        self.blocks = nn.ModuleList(VitBlock(d, n_head, d_ff) for _ in range(n_layer))
        self.post_ln = nn.LayerNorm(d, eps=1e-5)
        self.proj = nn.Linear(d, d_out, bias=False)

    def hidden(self, img, n_blocks):                        # img [B,3,S,S] normalised
        p = self.patch_embd(img).flatten(2).transpose(1, 2)  # [B,N,D], patch p = py*G+px
        x = torch.cat([self.class_embd.expand(p.shape[0], 1, -1), p], 1) + self.pos_embd
        x = self.pre_ln(x)
        for b in self.blocks[:n_blocks]:
            x = b(x)
        return x

    def features(self, img):
        """LLaVA's features: second-to-last layer, CLS dropped: [B,N,D]."""
        return self.hidden(img, len(self.blocks) - 1)[:, 1:]

    def embed(self, img):
        return self.proj(self.post_ln(self.hidden(img, len(self.blocks))[:, 0]))


class TextEncoder(nn.Module):
    def __init__(self, n_vocab, d=64, d_out=64, max_len=96):
        super().__init__()
        self.tok = nn.Embedding(n_vocab, d)
        self.pos = nn.Parameter(torch.randn(max_len, d) * 0.02)
        self.block = VitBlock(d, 4, 4 * d)
        self.ln = nn.LayerNorm(d)
        self.proj = nn.Linear(d, d_out, bias=False)

    def forward(self, ids, mask):                           # ids, mask [B,T]
        x = self.block(self.tok(ids) + self.pos[: ids.shape[1]])
        x = self.ln(x)
        m = mask.unsqueeze(-1).float()
        return self.proj((x * m).sum(1) / m.sum(1))


class Projector(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.mm0, self.mm2 = nn.Linear(d_in, d_out), nn.Linear(d_out, d_out)

    def forward(self, f):
        return self.mm2(F.gelu(self.mm0(f)))


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LlamaLayer(nn.Module):
    def __init__(self, e, n_head, f):
        super().__init__()
        self.n_head = n_head
        self.attn_norm, self.ffn_norm = RMSNorm(e), RMSNorm(e)
        self.q, self.k, self.v, self.o = (nn.Linear(e, e, bias=False) for _ in range(4))
        self.gate, self.up, self.down = nn.Linear(e, f, bias=False), nn.Linear(e, f, bias=False), \
            nn.Linear(f, e, bias=False)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


class Llama(nn.Module):
    def __init__(self, n_vocab, e=128, n_layer=2, n_head=4, f=344, ctx=256, rope_base=10000.0):
        super().__init__()
        self.n_vocab, self.e, self.n_layer, self.n_head, self.f, self.ctx = n_vocab, e, n_layer, n_head, f, ctx
        self.rope_base = rope_base
        self.tok_embd = nn.Embedding(n_vocab, e)
        nn.init.normal_(self.tok_embd.weight, std=0.02)
        self.layers = nn.ModuleList(LlamaLayer(e, n_head, f) for _ in range(n_layer))
        self.norm = RMSNorm(e)
        hd = e // n_head
        inv = rope_base ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        ang = torch.arange(ctx, dtype=torch.float64)[:, None] * inv[None]
        ang = torch.cat([ang, ang], -1)
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)

    def forward(self, x, pos0=0, cache=None, prefix=None):
        """x [B,T,E] input embeddings at positions pos0.. -> logits [B,T,V]. cache: list of (k,v)
        per layer, extended in place (greedy decoding). prefix: per-layer (k,v) of a shared
        prompt prefix computed with batch 1 (from forward(..., cache=[])); it is broadcast over
        the batch (the constant system prompt is then computed once per step, not B times)."""
        B, T, E = x.shape
        H, hd = self.n_head, E // self.n_head
        cos, sin = self.cos[pos0:pos0 + T], self.sin[pos0:pos0 + T]
        for i, L in enumerate(self.layers):
            h = L.attn_norm(x)
            sh = lambda t: t.view(B, T, H, hd).transpose(1, 2)  # noqa: E731
            q, k, v = sh(L.q(h)), sh(L.k(h)), sh(L.v(h))
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if prefix is not None:
                k = torch.cat([prefix[i][0].expand(B, -1, -1, -1), k], 2)
                v = torch.cat([prefix[i][1].expand(B, -1, -1, -1), v], 2)
            if cache is not None:
                if len(cache) > i:
                    k = torch.cat([cache[i][0], k], 2)
                    v = torch.cat([cache[i][1], v], 2)
                    cache[i] = (k, v)
                else:
                    cache.append((k, v))
            S = k.shape[2]
            att = q @ k.transpose(-1, -2) / math.sqrt(hd)
            causal = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)
            att = att.masked_fill(~causal, float("-inf"))
            a = torch.softmax(att, -1) @ v
            x = x + L.o(a.transpose(1, 2).reshape(B, T, E))
            h = L.ffn_norm(x)
            x = x + L.down(F.silu(L.gate(h)) * L.up(h))
        return self.norm(x) @ self.tok_embd.weight.t()
