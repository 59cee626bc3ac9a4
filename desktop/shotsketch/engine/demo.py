"""The demo model: the real Wan2.2 TI2V-5B pipeline classes at a tiny size with seeded random weights.

It keeps the real model's compression (16x spatial through a patch-2 residual VAE, 4x temporal,
48 latent channels, 1x2x2 transformer patches) so every code path that maps pixels, latents and
tokens onto each other is the real one. Its output is coloured noise: it exists so the whole app
can be tried, and tested, with no download.
"""

from __future__ import annotations

DEMO_MODEL_ID = "demo"
DEMO_REVISION = "tiny-random-v1"
TEXT_DIM = 32
MAX_SEQUENCE_LENGTH = 512

# A small corpus that the demo tokenizer's byte-pair merges are learned from. Any text still
# tokenizes (unknown words fall back to single characters), so offsets work for every prompt.
_CORPUS = """
a an the of and with while to from in on at by into onto over under above below behind
left right center centre middle top bottom edge corner upper lower front back foreground background
rolls moves walks runs flies rises falls jumps drives slides floats sits stands remains stationary
slowly quickly smoothly across toward towards away screen frame shot camera scene
yellow blue red green white black orange purple pink brown grey gray golden silver
ball cube car house bird person dog cat tree forest mountain river sky cloud sun moon boat
man woman child horse fish city street road table chair window door lamp flower balloon kite
distorted limbs floating objects blurry low quality watermark text static frame deformed
"""


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.BPEDecoder()
    alphabet = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"-()")
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<pad>", "</s>", "<unk>"], initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
        model_max_length=MAX_SEQUENCE_LENGTH,
    )


def build_components(seed: int = 0) -> dict:
    """All WanPipeline components, tiny, seeded, in eval mode (no dropout)."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer), d_model=TEXT_DIM, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
            relative_attention_num_buckets=8, dropout_rate=0.0, feed_forward_proj="gated-gelu",
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=0,
        )
    )
    torch.manual_seed(seed + 1)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=48, out_channels=48,
        text_dim=TEXT_DIM, freq_dim=32, ffn_dim=64, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=64,
    )
    torch.manual_seed(seed + 2)
    vae = AutoencoderKLWan(
        base_dim=8, decoder_base_dim=8, z_dim=48, in_channels=12, out_channels=12, is_residual=True,
        patch_size=2, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
        scale_factor_spatial=16, scale_factor_temporal=4,
        latents_mean=[0.0] * 48, latents_std=[1.0] * 48,
    )
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=5.0
    )
    for module in (text_encoder, transformer, vae):
        module.eval().requires_grad_(False)
    return {
        "tokenizer": tokenizer, "text_encoder": text_encoder, "vae": vae,
        "scheduler": scheduler, "transformer": transformer,
    }


def build_pipeline(seed: int = 0):
    from diffusers import WanPipeline

    return WanPipeline(**build_components(seed), expand_timesteps=True)
