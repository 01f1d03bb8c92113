"""The embedded default: scikit-learn's handwritten digits and a tiny Stable-Diffusion-architecture
generator that jaxsets pretrains on a pool of digits disjoint from the classifier's data.

  jaxsets run --config configs/digits.py --workdir runs/digits
  jaxsets run --config configs/digits.py:smoke --workdir runs/smoke   # about a minute

Variants (the text after the colon): "" (default), "smoke" (tiny, for tests and a quick look).
"""
import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  # --- Data (jaxsets/data) --------------------------------------------------------------
  c.data = ml_collections.ConfigDict()
  # "digits" (embedded), any TFDS image-classification name ("cifar10", "imagenet_resized/64x64"),
  # or "folder:PATH" for your own images: PATH/<class>/*, PATH/train|validation|test/<class>/*,
  # or Tiny-ImageNet's layout (wnids.txt, words.txt, val/val_annotations.txt). Offline: set
  # data_dir to a prepared TFDS copy (JAXSETS_OFFLINE=1 never tries to download).
  c.data.name = "digits"
  c.data.data_dir = ""              # TFDS data_dir ("" = TFDS default, ~/tensorflow_datasets)
  c.data.image_size = 8             # the classifier's resolution; generated images are resized to it
  c.data.channels = 1
  c.data.train_per_class = 5        # low-data regime: real training images kept per class (0 = all)
  c.data.imbalance_ratio = 1.0      # >1: long-tailed train split, class i keeps 1 -> 1/ratio
  # Validation carved (stratified) from train when absent. The reward is a difference of two
  # validation accuracies; 0.6 of digits' 539 train images (323, vs 162 at 0.3) makes one image
  # 0.3 points instead of 0.6, so a step's reward is less a matter of a few flipped images.
  c.data.val_fraction = 0.6

  # --- Classifier (jaxsets/classifier) --------------------------------------------------
  c.classifier = ml_collections.ConfigDict()
  c.classifier.model = "small_cnn"  # small_cnn | resnet20 | resnet56 | resnet18 | resnet50 | vit_small
  c.classifier.batch_size = 64
  c.classifier.baseline_steps = 300
  c.classifier.finetune_steps = 40
  c.classifier.learning_rate = 3e-3
  c.classifier.finetune_learning_rate = 1e-3
  c.classifier.weight_decay = 1e-4
  c.classifier.finetune_from = "baseline"  # baseline: restart from the pretrained baseline each step; continue
  c.classifier.augment = True       # random crop (below) inside jit
  c.classifier.crop_padding = 1     # pixels of zero padding before the random crop (4 for 32x32)
  c.classifier.hflip = False        # never flip digits; True for natural images (cifar10, ...)
  c.classifier.label_smoothing = 0.1  # 300 steps, all train data: test acc 0.984-0.993 (3 seeds)

  # --- Generator (jaxsets/generator) ----------------------------------------------------
  c.generator = ml_collections.ConfigDict()
  # "embedded" = the tiny model jaxsets pretrains (cached); otherwise a Hugging Face id or a
  # local diffusers-format folder, e.g. "stabilityai/stable-diffusion-2-1-base".
  c.generator.model = "embedded"
  c.generator.cache_dir = ""        # "" = $JAXSETS_CACHE or ~/.cache/jaxsets
  c.generator.revision = ""         # Hugging Face branch, tag or commit ("" = main)
  c.generator.variant = ""          # weight files' infix, e.g. "fp16" ("" = the plain files)
  c.generator.dtype = "float32"     # float32 | bfloat16 | auto (bf16 for real SD on GPU/TPU)
  # auto | dot_product (jax.nn.dot_product_attention: cuDNN's fused kernel on NVIDIA GPUs, fp32
  # softmax) | diffusers (its einsums). auto = diffusers for fp32 on CPU, where it keeps this
  # config's published bits; dot_product elsewhere (jaxsets/generator/hf_attention.py).
  c.generator.attention = "auto"
  c.generator.scheduler = "ddim"    # ddim | dpm_solver | euler | pndm
  # 10 steps read as well as 20 (99% vs 99.5% of photo prompts) in half the time
  # (studies/issue18/README.md).
  c.generator.num_inference_steps = 10
  c.generator.guidance_scale = 3.0
  c.generator.negative_prompt = ""
  c.generator.max_prompt_length = 0  # 0 = the tokenizer's own limit (77 for real SD)

  # How the embedded generator is pretrained (ignored for real SD weights).
  c.pretrain = ml_collections.ConfigDict()
  # 1,500 UNet steps: 99.5% of "A photo of a {digit}" read as the digit (2,000: 100%; 1,000: 80%,
  # below the 95% floor), a minute and a half shorter (studies/issue18/README.md).
  c.pretrain.steps = 1500
  c.pretrain.vae_steps = 300
  c.pretrain.batch_size = 64
  c.pretrain.learning_rate = 2e-3
  c.pretrain.ema_decay = 0.999
  c.pretrain.p_triple = 0.5         # share of three-class captions (blends led by c1)
  c.pretrain.min_snr_gamma = 5.0    # Min-SNR loss weighting; 0 = plain MSE
  c.pretrain.caption_dropout = 0.1
  c.pretrain.seed = 0

  # --- Agent (jaxsets/agent): PPO over a factorised (domain, c1, c2, c3) action ----------
  c.agent = ml_collections.ConfigDict()
  c.agent.hidden_sizes = (64, 64)
  c.agent.autoregressive = True     # slot k's logits conditioned on the domain and slots < k
  # per_class: a Dense layer of n logits per slot; shared: one small MLP scores every class from
  # its own state (accuracy, support count), so the greedy roll-out can move from class to class
  # (jaxsets/agent/class_scorer.py); per_class heads made it repeat one class for all 40 steps
  c.agent.class_head = "shared"
  # Chosen once per episode and credited with the episode's return against the other
  # environments' (jaxsets/agent/episode_level.py): the domain, and the blend (pure prompts,
  # c2 = c3 = c1, or mixed ones). Whole sets differ by points with both on validation (seed 0:
  # all photo 0.959, all sketch 0.923; pure above mixed in 4 of 4 comparisons), but a per-step
  # choice decides 1/40 of a set and its reward is noise (studies/issue5/README.md).
  # () = every head decides every step, as in the paper.
  c.agent.episode_decisions = ("domain", "blend")
  # True: the domain plan may also be "every domain in turn" (step t takes domain t mod D).
  c.agent.domain_in_turn = False
  c.agent.learning_rate = 3e-3      # 1e-3: the policy entropy had moved 1.5% after 16 updates
  c.agent.clip_eps = 0.2
  c.agent.value_clip_eps = 0.0      # 0 = plain squared value loss (> 0: PPO2 value clipping)
  c.agent.vf_coef = 0.5
  c.agent.ent_coef = 0.01
  # A step's reward is the marginal value of its 10 images given the set so far; with 0.99 every
  # advantage also summed ~40 later rewards' noise (each step's sd ~0.007 against effects ~0.001).
  c.agent.gamma = 0.5
  c.agent.gae_lambda = 0.95
  c.agent.epochs = 4
  c.agent.minibatches = 4           # need not divide T*E: each epoch drops the remainder at random
  c.agent.max_grad_norm = 0.5
  c.agent.normalize_advantages = True
  c.agent.num_envs = 4              # environments (classifier copies) stepped together
  # 2: the whole job, pretraining included, must fit in 10 minutes on 2 CPU cores
  # (timings in studies/issue18/README.md). What more episodes do: same README.
  c.agent.episodes = 2
  c.agent.update_every = 10         # steps between PPO updates (0 = once per episode)
  c.agent.observation = ml_collections.ConfigDict()
  c.agent.observation.per_class_entropy = False  # + n values: per-class entropy / log(n)
  c.agent.observation.support_counts = True      # + n values: support images per class / budget

  # --- Reward: w_acc * dAccuracy - w_ent * dEntropy on the validation split -----------------
  c.reward = ml_collections.ConfigDict()
  c.reward.w_acc = 1.0
  # The paper's weight is 1. Measured on digits (fixed sets, 6 fine-tunes each): the mean
  # predictive entropy moves ~10x more than accuracy and the wrong way, e.g. random three-class
  # blends lowered it by 0.38 nats while the best set for test accuracy (balanced, "photo",
  # c2 = c3 = c1: test 0.932 vs 0.919) left it unchanged. At 1 the agent chases confidence.
  c.reward.w_ent = 0.05
  c.reward.entropy = "mean_predictive"  # mean_predictive | per_class_accuracy_entropy

  # --- The loop (jaxsets/loop) ----------------------------------------------------------
  c.loop = ml_collections.ConfigDict()
  c.loop.images_per_step = 10       # images generated per agent step (paper: 10)
  c.loop.budget = 400               # support-set size N_syn (paper: ~400): budget/images_per_step steps
  # Steps between checkpoints (and always at phase ends and on SIGTERM): a save took ~0.5 s on a
  # shared 2-core machine (studies/issue18/README.md); a crash loses at most 4 steps.
  c.loop.checkpoint_every = 5
  c.loop.eval_repeats = 3           # fine-tunes (different minibatch keys) averaged per test arm
  c.loop.keep_checkpoints = 2
  # How the trained agent builds the delivered set. herding: each step's domain, blend and
  # classes are those furthest behind the share the policy gives them (deterministic, and as
  # varied as the policy: an agent unsure of its domain after 8 episodes delivers a mix in its
  # proportions; on seeds 3 and 4 no single domain beat random prompts, the evenly mixed set
  # did); greedy: the most likely plan and action, which staked the whole set on one domain and,
  # from a nearly uniform class policy, put all 400 images in one digit in 3 of 5 seeds
  # (studies/issue5/README.md).
  c.loop.rollout = "herding"

  # --- Prompt dictionary ----------------------------------------------------------------
  c.prompts = ml_collections.ConfigDict()
  c.prompts.template = "A {domain} of a {c1}, {c2}, and {c3}"
  c.prompts.domains = ("photo", "drawing", "sketch", "painting")
  c.prompts.class_names = ()        # () = the dataset's own class names

  if variant == "smoke":
    c.classifier.baseline_steps = 40
    c.classifier.finetune_steps = 10
    c.loop.budget = 40              # 4 steps of 10 images
    c.loop.checkpoint_every = 1     # the resume tests stop runs between any two steps
    c.loop.eval_repeats = 1
    # The generator keeps the default pretraining, so a smoke run shares its cache; the tests
    # shrink it further with --config.pretrain.* overrides.
    c.agent.hidden_sizes = (32, 32)
    c.agent.num_envs = 2
    c.agent.episodes = 1
    c.agent.update_every = 2
    c.agent.epochs = 2
    c.agent.minibatches = 2
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of configs/digits.py: use '' or 'smoke'")
  return c
