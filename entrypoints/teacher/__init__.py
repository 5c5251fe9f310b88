"""The simulator as the teacher: generated questions solved with the real tool
servers, written as the trace records and training examples of the served policy's
layout (`sciserve data build wkd-teacher`)."""
