"""A tiny random-weight VideoScore checkpoint in the exact hub layout (tests, `make demo`, benchmarks).

Same structure as `TIGER-Lab/VideoScore`: an Idefics2 config (vision tower with patch 14 up to 980 px, perceiver
resampler with 64 latents, Mistral LM), `model.*` + `score.*` bf16 weights in sharded safetensors with an index,
a Llama/Mistral-style byte-fallback BPE tokenizer with the Idefics2 image tokens, and Idefics2 processor files.
Only the widths and depths are tiny, so the scorer loads it through exactly the code path real weights take.
Weights are deterministic in `seed` and scaled so the five outputs land around 1-4 and move with the input.
"""

import json
from pathlib import Path
from typing import Any

from vidscore.schemas.videoscore import ASPECTS

VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 980,
    "patch_size": 14,
    "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
}
PERCEIVER = {
    "hidden_act": "silu",
    "resampler_n_latents": 64,
    "resampler_depth": 2,
    "resampler_n_heads": 2,
    "resampler_head_dim": 16,
    "num_key_value_heads": 1,
}
TEXT = {
    "model_type": "mistral",
    "hidden_size": 48,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": 32768,
    "rope_theta": 10000.0,
    "sliding_window": 4096,
    "tie_word_embeddings": False,
}
# The published sizes (SigLIP-so400m, the Idefics2-8B perceiver, Mistral-7B), for GPU benchmarks: 8.3B parameters.
FULL = {
    "vision": {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27, "num_attention_heads": 16},
    "perceiver": {"resampler_depth": 3, "resampler_n_heads": 16, "resampler_head_dim": 96, "num_key_value_heads": 4},
    "text": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 8, "vocab_size": 32003},
}  # fmt: skip
IMAGE_TOKENS = ("<fake_token_around_image>", "<image>", "<end_of_utterance>")
SHARDS = 2
_CORPUS = """
A cat playing piano on a stage, cinematic lighting, 4k. A drone shot over a snowy mountain at sunrise.
Two astronauts riding horses on the moon. The quick brown fox jumps over the lazy dog; numbers 0123456789.
Near the village, they approach the haunted house at night, and a mysterious sound adds to the suspense.
"""


def _tokenizer_files(out: Path) -> dict[str, int]:
    """Train a byte-fallback BPE offline and write it as a Mistral/Idefics2 tokenizer; returns special ids."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    from vidscore.operators.scorers.videoscore import template

    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer_tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer_tok.pre_tokenizer = pre_tokenizers.Split(Regex("▁[^▁]*|[^▁]+"), behavior="isolated")
    base = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=640, special_tokens=base, show_progress=False)
    trainer_tok.train_from_iterator([template(), _CORPUS] * 4, trainer=trainer)
    trained = json.loads(trainer_tok.to_str())["model"]

    # Rebuild without the trainer's added tokens: byte pieces are plain vocabulary, as in Mistral's tokenizer.
    bpe = models.BPE(
        vocab=trained["vocab"],
        merges=[tuple(m) for m in trained["merges"]],
        unk_token="<unk>",
        fuse_unk=True,
        byte_fallback=True,
    )
    tok = Tokenizer(bpe)
    # Non-legacy Llama/Mistral layout (what transformers' LlamaTokenizer builds): one prefix space per text.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ("<unk>", "<s>", "</s>")])
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in IMAGE_TOKENS])
    ids = {t: tok.token_to_id(t) for t in ("<unk>", "<s>", "</s>", *IMAGE_TOKENS)}
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", ids["<s>"])]
    )
    tok.save(str(out / "tokenizer.json"))

    decoder = {
        str(i): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t, i in ids.items()
    }
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "LlamaTokenizer",
                "add_bos_token": True,
                "add_eos_token": False,
                "legacy": False,
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "pad_token": "<unk>",
                "additional_special_tokens": list(IMAGE_TOKENS),
                "added_tokens_decoder": decoder,
                "clean_up_tokenization_spaces": False,
                "model_max_length": 1000000000000000019884624838656,
                "padding_side": "right",
                "processor_class": "Idefics2Processor",
            },
            indent=2,
        )
    )
    (out / "special_tokens_map.json").write_text(
        json.dumps(
            {
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "pad_token": "<unk>",
                "additional_special_tokens": list(IMAGE_TOKENS),
            },
            indent=2,
        )
    )
    ids["vocab_size"] = tok.get_vocab_size(with_added_tokens=True)
    return ids


def _weights(config: Any, seed: int, device: str = "cpu") -> dict[str, Any]:
    """Deterministic `model.*` + `score.*` tensors (for a given `device`): fan-in scaled so activations neither
    vanish nor explode."""
    import torch
    from transformers import Idefics2Model

    with torch.device("meta"):  # shapes only: no memory, even at full size
        shapes = {k: v.shape for k, v in Idefics2Model(config).state_dict().items()}
    hidden = config.text_config.hidden_size
    gen = torch.Generator(device).manual_seed(seed)
    out = {}
    for name in sorted(shapes):
        shape = shapes[name]
        noise = torch.randn(shape, generator=gen, device=device)
        if len(shape) == 1 and "norm" in name:
            value = 1.0 + 0.1 * noise if name.endswith("weight") else 0.1 * noise
        elif len(shape) == 1:
            value = 0.1 * noise
        elif "embed" in name or "latents" in name:
            value = noise
        else:
            value = noise / float(torch.tensor(shape[1:]).prod()) ** 0.5
        out[f"model.{name}"] = value.to(torch.bfloat16).cpu()  # one at a time: full size never sits in fp32
    out["score.weight"] = torch.randn(len(ASPECTS), hidden, generator=gen, device=device) / hidden**0.5
    out["score.bias"] = 2.5 + 0.3 * torch.randn(len(ASPECTS), generator=gen, device=device)
    return {k: v.to(torch.bfloat16).cpu().contiguous() for k, v in out.items()}


def build(out_dir: str | Path, seed: int = 0, full: bool = False, device: str = "cpu") -> Path:
    """Write the checkpoint into `out_dir` (created if needed) and return it. `full`: the published sizes
    (8.3B parameters, for GPU benchmarks); `device` generates the weights."""
    from safetensors.torch import save_file
    from transformers import Idefics2Config

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = _tokenizer_files(out)
    vision = dict(VISION, **FULL["vision"]) if full else dict(VISION)
    text = dict(TEXT, **FULL["text"]) if full else dict(TEXT, vocab_size=ids["vocab_size"])
    text.update(bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<unk>"])
    perceiver = dict(PERCEIVER, **FULL["perceiver"]) if full else dict(PERCEIVER)
    perceiver.update(hidden_size=text["hidden_size"], rms_norm_eps=text["rms_norm_eps"])
    config = Idefics2Config(
        vision_config=vision,
        perceiver_config=perceiver,
        text_config=text,
        image_token_id=ids["<image>"],
        use_cache=False,
    )
    raw = config.to_dict()
    raw.update(
        architectures=["Idefics2ForSequenceClassification"],
        num_labels=len(ASPECTS),
        id2label={str(i): a for i, a in enumerate(ASPECTS)},
        label2id={a: i for i, a in enumerate(ASPECTS)},
        problem_type="regression",
        pad_token_id=ids["<unk>"],
        torch_dtype="bfloat16",
    )
    (out / "config.json").write_text(json.dumps(raw, indent=2, sort_keys=True))

    tensors = _weights(config, seed, device)
    names = sorted(tensors)
    weight_map, total = {}, 0
    shards = 4 if full else SHARDS  # as published: 4 shards of ~4 GB
    for shard in range(shards):
        part = names[shard::shards]
        fname = f"model-{shard + 1:05d}-of-{shards:05d}.safetensors"
        save_file({k: tensors[k] for k in part}, str(out / fname), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, fname))
        total += sum(tensors[k].numel() * tensors[k].element_size() for k in part)
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))

    seq_len = PERCEIVER["resampler_n_latents"]
    (out / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "Idefics2ImageProcessor",
                "processor_class": "Idefics2Processor",
                "do_convert_rgb": True,
                "do_resize": True,
                "resample": 2,
                "do_rescale": True,
                "rescale_factor": 1 / 255,
                "do_normalize": True,
                "image_mean": [0.5, 0.5, 0.5],
                "image_std": [0.5, 0.5, 0.5],
                "do_pad": True,
                "do_image_splitting": False,
                "size": {"shortest_edge": 378, "longest_edge": 980},
            },
            indent=2,
        )
    )
    (out / "processor_config.json").write_text(
        json.dumps({"processor_class": "Idefics2Processor", "image_seq_len": seq_len}, indent=2)
    )
    return out
