"""The annotation API, declared: the table of every autoscaling key (`table`) and the
model-injection keys (`model_keys`; their reader is `translator.injection.request`)."""
