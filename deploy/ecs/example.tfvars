# Copy to terraform.tfvars and fill in. Then:
#   terraform init && terraform apply
#   aws secretsmanager put-secret-value --secret-id sluice/source-dsn --secret-string '…'
#   aws secretsmanager put-secret-value --secret-id sluice/target-dsn --secret-string '…'
region             = "eu-west-1"
image              = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sluice:0.1.0"
subnet_ids         = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
security_group_ids = ["sg-0123456789abcdef0"]
brokers            = "b-1.example.kafka.eu-west-1.amazonaws.com:9092,b-2.example.kafka.eu-west-1.amazonaws.com:9092"
schedule_timezone  = "Europe/Berlin"
schedule_state     = "ENABLED"
alarm_actions      = ["arn:aws:sns:eu-west-1:123456789012:oncall"]
# The tail (binlog CDC): needs the source's binlog settings and grants; false
# for a nightly-only deployment.
tail_enabled = true
