"""Every AWS call the provider makes, in one place: ECR, EventBridge Scheduler, CloudFormation (stack status), the
SDK check, and the ownership ledger in DynamoDB. A gateway imports no engine and no resource type."""
