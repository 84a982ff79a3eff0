"""Work on many repositories, for the resource types: parallel batches over a namespace that continue across
invocations, settings brought to a namespace and put back, registry settings merged among resources, and the image
expiry sweep. An engine imports the contract, the grammars and the gateways, never a resource type."""
