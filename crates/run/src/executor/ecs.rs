//! ECS executor (placeholder until the next step).
