"""pivot-eval: the paper's word translation task, logit lens and behaviours (docs/evaluation.md)."""
