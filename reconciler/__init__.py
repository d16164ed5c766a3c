"""The bundled controller: KPA decider (pure), collectors, actuator, ScaledObject sync, leader election."""
