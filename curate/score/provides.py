"""What the scoring stage provides other stages (`Stage.provides`), without torch on import.

`Embeddings`: the names of the vectors Score writes on each sample (SemDeDup, semantic balance
and the eval set's cosine read them) and its models, to embed other images the same way.
"""
from __future__ import annotations

from curate.score.names import text_vector_name, vector_name
from curate.score.settings import ScoreSettings


class Embeddings:
    def __init__(self, settings: ScoreSettings):
        self.settings = settings

    def vector(self, kind: str = "image", roles: tuple[str, ...] = ("clip", "dfn")) -> str | None:
        """The `sample.vectors` key of the first of `roles` this run scores with: its image or
        caption ("text") embedding; None when the run scores with none of them."""
        role = next((r for r in roles if r in self.settings.models), None)
        if role is None:
            return None
        return vector_name(role) if kind == "image" else text_vector_name(role)

    def embedder(self, vector_names: tuple[str, ...]):
        """The model that makes the first of `vector_names` (image embeddings), as a transform
        that embeds other batches the same way; None when no scoring model makes one."""
        from curate.score.score_with import ScoreWith

        for name in vector_names:
            for role, spec in self.settings.models.items():
                if vector_name(role) == name:
                    return ScoreWith(spec, self.settings.inference)
        return None
