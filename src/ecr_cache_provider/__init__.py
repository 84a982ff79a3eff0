"""ECR pull-through caching as CloudFormation custom resources."""
