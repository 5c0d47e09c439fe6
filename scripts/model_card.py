#!/usr/bin/python3
"""Writes MODEL_CARD.md for a model trained by `octet pretrain` or `octet finetune`.

Every figure comes from the run's own logs (pretrain_log.json, train_log.json) and, for a
fine-tuned model, from `octet eval --json` on the committed directory (the Octet engine's
metric, the one the card quotes); nothing is typed by hand.

  scripts/model_card.py --model models/octet-bert-mini-uncased --command "$(cat cmd.txt)"
  scripts/model_card.py --model models/octet-bert-mini-sst2 --eval eval.json --command ...
"""
import argparse
import json
import os
import platform
import subprocess


def size_mib(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
               if os.path.isfile(os.path.join(d, f))) / 2**20


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def arch(cfg):
    return (f"{cfg['num_hidden_layers']} layers, hidden {cfg['hidden_size']}, "
            f"{cfg['num_attention_heads']} heads, FFN {cfg['intermediate_size']}, "
            f"vocabulary {cfg['vocab_size']} (BERT uncased WordPiece), max positions "
            f"{cfg['max_position_embeddings']}, GELU (erf), post-LayerNorm")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--command", required=True, help="the exact command(s) that produced it")
    ap.add_argument("--eval", help="octet eval --json output on the committed directory")
    ap.add_argument("--base", help="the pretrained model it was fine-tuned from")
    ap.add_argument("--pretraining-dropout", type=float,
                    help="dropout used while pretraining, when config.json holds another value "
                         "(the one fine-tuning reads)")
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    name = os.path.basename(os.path.normpath(a.model))
    out = [f"# {name}", ""]
    pre = os.path.join(a.model, "pretrain_log.json")
    ft = os.path.join(a.model, "train_log.json")
    if os.path.exists(pre):
        log = json.load(open(pre))
        o, c = log["options"], log["corpus"]
        ev = log["final_eval"]
        out += [
            "A small BERT pretrained by Octet's own trainer (`octet pretrain`, libtorch) with "
            "masked-language modelling only (no next-sentence prediction), written as a Hugging "
            "Face model directory (config.json, model.safetensors in FP16, vocab.txt). It is "
            "the starting point of Octet's fine-tuned models; it is not a substitute for "
            "Google's BERT-mini, which saw billions of tokens.", "",
            "## Architecture", "", arch(cfg) + ". Includes the MLM head (`cls.predictions.*`, "
            "decoder tied to the word embeddings) and an untrained pooler (no NSP).", "",
            "## Data", "",
            f"`$OCTET_DATA/corpus`: {len(o['corpus'])} gzipped files (English Wikipedia 2015 "
            f"articles and BBC news, one document per line), {c['documents']:,} documents, "
            f"{c['bytes']/1e6:.1f} MB of text, {c['tokens']:,} WordPiece tokens, packed into "
            f"{c['sequences']:,} sequences of {o['seq_len']} tokens ([CLS] ... [SEP], documents "
            f"joined by [SEP]); the last {c['heldout_sequences']} sequences are held out.", "",
            "## Training", "",
            f"- steps: {log['steps_done']:,} of a schedule of {o['max_steps']:,}"
            + (" (stopped by the time limit)" if log["stopped_by_time"] else ""),
            f"- tokens seen: {log['tokens_seen']:,} "
            f"({log['tokens_seen']/c['tokens']:.2f} passes over the corpus)",
            f"- batch {o['batch_size']} x {o['seq_len']} tokens; dynamic masking "
            f"{o['mask_prob']:.0%} (80% [MASK], 10% random, 10% kept)",
            f"- AdamW lr {o['lr']}, betas {o['betas']}, eps {o['adam_eps']}, weight decay "
            f"{o['weight_decay']} (not on biases and LayerNorm), linear warm-up "
            f"{o['warmup_ratio']:.0%} then linear decay, gradient clipping {o['clip_norm']}",
            *([f"- dropout {a.pretraining_dropout:g} while pretraining (set by the `--config` "
               "in the command below); config.json holds "
               f"{cfg.get('hidden_dropout_prob', 0.1):g}, the value fine-tuning uses"]
              if a.pretraining_dropout is not None else []),
            f"- seed {o['seed']}, {log['threads']} libtorch thread(s), matrix products in "
            f"{o.get('matmul_precision', 'f32').upper()}",
            "- initialisation: Hugging Face's"
            + {"local": f", except the position table and the query/key weights "
                        f"(`--position-init local`, gain {o.get('local_attention_gain')}: each head "
                        "starts attending to one neighbour offset, docs/training.md)",
               "sinusoidal": ", with sinusoidal position embeddings"}.get(
                   o.get("position_init", "normal"), ""),
            f"- time: {log['train_seconds']/60:.1f} minutes of training, "
            f"{log['tokens_per_second']:.0f} tokens/s on average, on {cpu_name()} "
            f"({os.cpu_count()} vCPUs)",
            f"- held-out MLM loss {ev['loss']:.4f}, accuracy {ev['mlm_accuracy']:.4f} "
            f"(initial loss ln(30522) = 10.33)", ""]
        evals = log.get("evals", [])
        if evals:
            out += ["Held-out MLM loss during training:", "", "| step | loss | accuracy |",
                    "| ---: | ---: | ---: |"]
            out += [f"| {e['step']} | {e['loss']:.4f} | {e['mlm_accuracy']:.4f} |" for e in evals]
            out += [""]
    elif os.path.exists(ft):
        log = json.load(open(ft))
        o = log["options"]
        out += [
            f"Octet's {log['task']} classifier: {a.base or o['model']} fine-tuned with "
            "`octet finetune` (libtorch) and written as a Hugging Face model directory "
            "(config.json, model.safetensors in FP16, vocab.txt). It is the default model of "
            "Octet's README.", "", "## Architecture", "", arch(cfg) + f"; classification head "
            f"with {cfg.get('num_labels', 2)} labels over the tanh pooler.", "",
            "## Training", "",
            f"- data: {o['train']} ({log['train_examples']:,} examples), evaluated on "
            f"{o['dev']} ({log['dev_examples']:,} examples) after each epoch; the best epoch is "
            f"kept (epoch {log['best_epoch']})",
            f"- {o['epochs']} epochs, batch {o['batch_size']}, max length {o['max_seq_len']}, "
            f"AdamW lr {o['lr']}, warm-up {o['warmup_ratio']:.0%} then linear decay, weight "
            f"decay {o['weight_decay']}, clipping {o['max_grad_norm']}, seed {o['seed']}, "
            f"{log['torch_threads']} thread(s)",
            f"- time: {log['seconds']/60:.1f} minutes on {cpu_name()}", "",
            "| epoch | train loss | dev (libtorch) | seconds |", "| ---: | ---: | ---: | ---: |"]
        for e in log["epochs"]:
            out.append(f"| {e['epoch']} | {e['train_loss']:.4f} | {e['dev_main']:.4f} | "
                       f"{e['seconds']:.0f} |")
        out += [""]
    else:
        raise SystemExit(f"{a.model}: neither pretrain_log.json nor train_log.json")
    if a.eval:
        ev = json.load(open(a.eval))
        out += ["## Dev metrics (Octet engine, FP32)", "",
                f"`octet eval` on {ev['data']} ({ev['examples']} examples):", ""]
        out += [f"- {k}: **{v:.4f}**" + (" (main)" if k == ev["main_metric"] else "")
                for k, v in ev["metrics"].items()]
        out += ["", "Reproduce (prints the same figures to the last digit):", "", "```",
                f"octet eval --model {a.model} --task {ev['task'].lower()} --data "
                f"$OCTET_DATA/glue/SST-2/dev.tsv", "```", ""]
    out += ["## How it was made", "", "```", a.command.strip(), "```", "",
            f"Size: {size_mib(a.model):.1f} MiB. Octet commit {git}. Licence of the data: see "
            "`$OCTET_DATA/README.md` (Wikipedia CC BY-SA; BBC news research use; GLUE per task).",
            ""]
    with open(os.path.join(a.model, "MODEL_CARD.md"), "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
