"""A local AWS for the provider, used by the tests, the stack player (`make local`) and the benchmarks:

- `moto_ecr`: moto 5 extended with ECR pull-through cache rules, repository creation templates and fault injection;
- `moto_server`: moto's threaded server with that extension, and the fake credentials every client needs;
- `cloudformation`: CloudFormation's side of a custom resource (request events, a Lambda context, the HTTPS
  endpoint its answers are PUT to);
- `lambda_emulator`: the Lambda Invoke API serving the provider's handler in this process.
"""
