terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }

  # State is local unless you copy backend.tf.example to backend.tf (S3 + lock file):
  # `make deploy_fresh` must work on an account with nothing in it yet.
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "lakehouse"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}
