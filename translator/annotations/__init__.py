"""The annotation API: the declarative table of every key (`table`) and the model-injection
keys with their reader (`model_keys`)."""
