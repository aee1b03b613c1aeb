"""The augment stage: a domain's QA pairs and documents in, a new, larger domain folder out.

Facts need many differently worded exposures before a fine-tuned model states them (Ovadia et al.
2023: Mistral-7B on current-events MCQ, fine-tuned .504, fine-tuned on paraphrased copies .588), and
a corpus holds far more facts than the few QA pairs someone wrote. :func:`augment` writes

* the original training rows (``source: original``),
* ``paraphrases`` rewordings of each training question, answer kept (``source: paraphrase``,
  ``parent_id``),
* question-answer pairs written from each document chunk (``source: generated``, ``doc_id``,
  ``chunk_id``, ``evidence``), each kept only when its answer (or, for numbers, its number) is stated
  in its chunk, when it is not a duplicate, and when it is not a near-duplicate of a val or test
  question (the loaders' leakage rule),

plus val/test copied byte for byte, the documents, and a datasheet (``README.md`` and
``datasheet.json``) counting what was kept and dropped, and why. The generator is any LangChain
chat model (``provider:model``), a local model through domainllm's serving (``hf:PATH`` or
``hf:default``), or pre-written generator output (``files:DIR``; how the shipped
``data/dental-augmented`` is built offline).
"""

from domainllm.augment.build import AugmentConfig, augment
from domainllm.augment.generators import ChatGenerator, FileGenerator, Generator, make_generator

__all__ = ["AugmentConfig", "ChatGenerator", "FileGenerator", "Generator", "augment", "make_generator"]
