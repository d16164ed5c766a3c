"""What every layer of the translator shares: findings and rule ids, value parsers, name checks
and the object model (kinds checked, annotation sites, paths). Imports nothing else of knscale."""
