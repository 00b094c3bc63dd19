"""Convert a Hugging Face transformer to ternary linear layers and fine-tune it with DST.

    python examples/finetune_hf.py [--steps 50] [--pretrained bert-base-uncased]

Without --pretrained a small BERT is built from a config (nothing is downloaded) and learns a
synthetic 3-class task; with it, the pretrained model is converted (needs the download). The
embeddings and the classifier stay float; tied weights (GPT-2's LM head) are reported, not split.
"""

from __future__ import annotations

import argparse

import torch
import transformers as tr

from gxnor_cuda.nn import convert
from gxnor_cuda.optim import DST


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrained", default=None)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.pretrained:
        model = tr.AutoModelForSequenceClassification.from_pretrained(args.pretrained, num_labels=3)
    else:
        cfg = tr.BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=256, num_labels=3)
        model = tr.BertForSequenceClassification(cfg)
    ids = torch.randint(0, model.config.vocab_size, (32, 24))
    labels = ids[:, 0] % 3  # a learnable synthetic rule
    convert(model, example_input=(ids[:2],), verbose=True)
    opt = DST.for_model(model, lr=0.02, float_lr=1e-3)
    model.train()
    for step in range(args.steps):
        opt.zero_grad()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == args.steps - 1:
            print(f"step {step}: loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
