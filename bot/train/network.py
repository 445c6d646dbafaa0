"""The network: MobileNetV2 (no pretrained weights) with a global depthwise head, and the training loss
(CosFace + distillation) written in keras.ops alone, so TensorFlow, torch or JAX can train it."""
from __future__ import annotations


# the layer whose output the exported model gives (export): the pooled features before the 128-d head
POOLED = "gdc_bn"


def build_backbone(size: int, alpha: float, dim: int):
    """MobileNetV2 (no pretrained weights) with a global depthwise head: [0,255] RGB -> embedding (not normalised)."""
    import keras
    inp = keras.Input((size, size, 3), name="face")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, include_top=False,
                                          weights=None)
    x = base(x)
    x = keras.layers.DepthwiseConv2D(x.shape[1], padding="valid", use_bias=False, name="gdc")(x)
    x = keras.layers.BatchNormalization(name="gdc_bn")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.1)(x)
    x = keras.layers.Dense(dim, use_bias=False, name="embedding")(x)
    x = keras.layers.BatchNormalization(name="embedding_bn")(x)
    model = keras.Model(inp, x, name="rollcall_face")
    # Keras' MobileNetV2 keeps BN moving averages with momentum 0.999: after the ~1000 steps a CPU run
    # affords they are still a third their initial values and eval-mode embeddings collapse. 0.9
    # follows the weights within ~50 steps.
    for layer in [*base.layers, *model.layers]:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    return model


def backend() -> str:
    import keras
    return keras.backend.backend()


def training_model(backbone, n_classes: int, dim: int, ce_weight: float, distill: float, s: float, m: float,
                    relational: float = 0.0):
    """The backbone plus CosFace weights, with the training loss as its compute_loss, in keras.ops only:
    the same code trains under TensorFlow here and torch or JAX on a GPU machine.

    `relational` > 0 adds a loss on the vector the bot actually uses (the pooled features, which the
    other two losses shape only through the 128-d head): within a batch, the cosines between the
    batch-centred pooled features of every two faces should equal the cosines of their teacher vectors."""
    import keras
    ops = keras.ops
    both = keras.Model(backbone.input, [backbone.output, backbone.get_layer(POOLED).output]) if relational else None

    class FaceTrainer(keras.Model):
        def __init__(self):
            super().__init__()
            self.backbone = backbone
            self.cosface_w = self.add_weight(shape=(dim, n_classes), name="cosface_w",
                                             initializer=keras.initializers.RandomNormal(stddev=0.01))

        def call(self, x, training=False):
            if both is not None:
                return both(x, training=training)
            return self.backbone(x, training=training)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            labels = ops.cast(y["labels"], "int32")
            pooled = None
            if both is not None:
                y_pred, pooled = y_pred
            e = ops.normalize(ops.cast(y_pred, "float32"), axis=1)
            w = ops.normalize(self.cosface_w, axis=0)
            onehot = ops.one_hot(ops.maximum(labels, 0), n_classes)
            logits = s * (ops.matmul(e, w) - m * onehot)
            lab = ops.cast(labels >= 0, "float32")
            ce = ops.categorical_crossentropy(onehot, logits, from_logits=True)
            ce = ops.sum(ce * lab) / ops.maximum(ops.sum(lab), 1.0)
            has_t = ops.cast(y["has_teacher"], "float32")
            cos_t = ops.sum(e * ops.cast(y["teacher"], "float32"), axis=1)
            dist = ops.sum((1.0 - cos_t) * has_t) / ops.maximum(ops.sum(has_t), 1.0)
            loss = ce_weight * ce + distill * dist
            if pooled is not None:
                p = ops.reshape(ops.cast(pooled, "float32"), (ops.shape(pooled)[0], -1))
                p = ops.normalize(p - ops.mean(p, axis=0, keepdims=True), axis=1)
                t = ops.cast(y["teacher"], "float32")
                pair = has_t[:, None] * has_t[None, :] * (1.0 - ops.eye(ops.shape(has_t)[0]))
                gap = ops.matmul(p, ops.transpose(p)) - ops.matmul(t, ops.transpose(t))
                loss = loss + relational * ops.sum(ops.square(gap) * pair) / ops.maximum(ops.sum(pair), 1.0)
            return loss

    return FaceTrainer()
