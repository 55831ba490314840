//! Every amazon-ebs option the schema accepts is applied, or listed in bakery-template's support table
//! (`schema::amazon_ebs::support`: refused at validate or ignored with a warning, each with its reason).
//! "Applied" is shown, option by option, by the request it changes on the lab (two bakes below set them
//! all), by a named test whose body sets it, or as another spelling of an applied option.

use crate::common::{Running, Scratch, clients, text};
use bakery_lab::Lab;
use bakery_template::schema::amazon_ebs::support::{self, NOT_APPLIED};
use std::collections::BTreeSet;
use std::path::Path;

/// How an applied option is shown to be applied.
#[derive(Debug)]
enum Evidence {
    /// Bake `usize` of [`BAKES`] sends `action` with this `Key=value` in its (percent-decoded) body.
    Request(usize, &'static str, &'static str),
    /// Some request of the bake carries this text in a header (credentials, session token).
    Header(usize, &'static str),
    /// The bake sends no `action` at all.
    NoRequest(usize, &'static str),
    /// The bake's output says this.
    Output(usize, &'static str),
    /// The bake only succeeds when the option is applied (the reason says why).
    Succeeds(usize, &'static str),
    /// This test (file under the repository root, function) sets the option in its body and checks its
    /// effect.
    Test(&'static str, &'static str),
    /// Another spelling of (or a block of key/value pairs merged into) this applied option.
    Spelling(&'static str),
}

use Evidence::{Header, NoRequest, Output, Request, Spelling, Succeeds, Test};

impl Evidence {
    fn bake(&self) -> Option<usize> {
        match self {
            Request(b, ..) | Header(b, _) | NoRequest(b, _) | Output(b, _) | Succeeds(b, _) => {
                Some(*b)
            }
            Test(..) | Spelling(_) => None,
        }
    }
}

/// One bake: builder members, provisioners, and whether the builder names `source_ami` (else the
/// members find it with `source_ami_filter`).
struct Bake {
    members: &'static str,
    provisioners: &'static str,
    source_ami: bool,
}

/// Three bakes set every option proven by a request; options that exclude each other are split between
/// them. Placeholders filled at run time: `UNIQUE` (the AMI name), `SNAPSHOT` (a snapshot the test
/// makes), `VPC`/`SUBNET`/`GROUP` (the default VPC, a subnet of it, its default group).
const BAKES: [Bake; 3] = [
    Bake {
        members: r#", "ami_description": "options probe {{ .SourceAMI }}",
    "ami_users": ["210987654321"], "ami_groups": ["all"],
    "ami_org_arns": ["arn:aws:organizations::210987654321:organization/o-probe1"],
    "ami_ou_arns": ["arn:aws:organizations::210987654321:ou/o-probe1/ou-probe-1"],
    "ami_product_codes": ["probecode1"], "imds_support": "v2.0",
    "deprecate_at": "2031-01-02T03:04:05Z",
    "deregistration_protection": {"enabled": true, "with_cooldown": false},
    "ami_regions": ["us-west-2"], "snapshot_copy_duration_minutes": 15,
    "snapshot_users": ["210987654322"], "snapshot_groups": ["all"],
    "force_deregister": true, "force_delete_snapshot": true,
    "tags": {"probe-tag": "t1"}, "snapshot_tags": {"probe-snap-tag": "s1"},
    "run_tags": {"probe-run": "r1"}, "run_volume_tags": {"probe-vol": "v1"},
    "ena_support": true, "sriov_support": true, "ebs_optimized": true,
    "shutdown_behavior": "terminate", "user_data": "probe-user-data",
    "associate_public_ip_address": true, "vpc_id": "VPC", "subnet_id": "SUBNET",
    "availability_zone": "us-east-1a",
    "placement": {"tenancy": "host", "host_id": "h-0probe1"},
    "capacity_reservation_id": "cr-0probe1",
    "license_specifications": [{"license_configuration_request": {"license_configuration_arn": "arn:aws:license-manager:us-east-1:210987654321:license-configuration:lic-probe1"}}],
    "enable_unlimited_credits": true,
    "metadata_options": {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 3, "instance_metadata_tags": "enabled"},
    "temporary_key_pair_type": "ed25519", "temporary_key_pair_name": "probe-key-UNIQUE",
    "temporary_security_group_source_cidrs": ["127.0.0.1/32"],
    "temporary_iam_instance_profile_policy_document": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]},
    "launch_block_device_mappings": [{"device_name": "/dev/sdf", "volume_size": 7, "volume_type": "gp3", "iops": 3100, "throughput": 135, "delete_on_termination": true, "encrypted": true, "kms_key_id": "alias/probe-launch"}],
    "ami_block_device_mappings": [{"device_name": "/dev/sdg", "volume_size": 9, "volume_type": "io2", "iops": 3200, "delete_on_termination": true, "encrypted": false}, {"device_name": "/dev/sdh", "no_device": true}, {"device_name": "/dev/sdi", "virtual_name": "ephemeral0"}, {"device_name": "/dev/sdl", "volume_size": 5, "volume_type": "gp3", "throughput": 145, "encrypted": true, "kms_key_id": "alias/probe-ami", "snapshot_id": "snap-0probe2"}]"#,
        provisioners: r#"[{"type":"shell","inline":["true"]}]"#,
        source_ami: true,
    },
    Bake {
        members: r#", "instance_type": "m5.large", "enable_nitro_enclave": true,
    "access_key": "probeak1", "secret_key": "probesk1", "token": "probetoken1",
    "assume_role": {"role_arn": "arn:aws:iam::123456789012:role/probe", "session_name": "probe-session", "external_id": "probe-ext", "duration_seconds": 1800, "policy": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ec2:*\",\"Resource\":\"*\"}]}", "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"], "tags": {"team": "probe"}},
    "source_ami_filter": {"filters": {"virtualization-type": "hvm"}, "owners": ["amazon"], "most_recent": true, "include_deprecated": true},
    "vpc_filter": {"filters": {"isDefault": "true"}},
    "subnet_filter": {"filters": {"default-for-az": "true"}, "most_free": true},
    "security_group_filter": {"filters": {"group-name": "default"}},
    "ssh_pty": true,
    "tenancy": "host", "placement": {"host_resource_group_arn": "arn:aws:resource-groups:us-east-1:210987654321:group/probe-hosts"},
    "capacity_reservation_group_arn": "arn:aws:resource-groups:us-east-1:210987654321:group/probe-crg",
    "ami_regions": ["us-west-2"], "encrypt_boot": true, "kms_key_id": "alias/probe-build",
    "region_kms_key_ids": {"us-west-2": "alias/probe-copy"},
    "tag": [{"key": "probe-tag-block", "value": "tb"}], "snapshot_tag": [{"key": "probe-snap-block", "value": "sb"}],
    "run_tag": [{"key": "probe-run-block", "value": "rb"}], "run_volume_tag": [{"name": "probe-vol-block", "value": "vb"}],
    "launch_block_device_mappings": [{"device_name": "/dev/sdj", "snapshot_id": "SNAPSHOT", "delete_on_termination": true}, {"device_name": "/dev/sdk", "no_device": true}]"#,
        // ssh_pty: a terminal is there.
        provisioners: r#"[{"type":"shell","inline":["test -t 1"]}]"#,
        source_ami: false,
    },
    Bake {
        members: r#", "communicator": "none", "skip_create_ami": true, "disable_stop_instance": true,
    "security_group_ids": ["GROUP"], "iam_instance_profile": "bakery-lab-profile", "user_data_file": "user-data.txt",
    "subnet_filter": {"filters": {"vpc-id": "VPC"}, "random": true}"#,
        provisioners: "[]",
        source_ami: true,
    },
];

/// Every applied option and its evidence. The test below fails when an accepted option is neither here
/// nor in the support table, or is in both.
const APPLIED: &[(&str, Evidence)] = &[
    // Access.
    ("access_key", Header(1, "Credential=probeak1/")),
    (
        "secret_key",
        Succeeds(
            1,
            "a request signed with another secret than the access key's is refused by AWS; the lab checks the key id only, so this is the access_key's request",
        ),
    ),
    ("token", Header(1, "probetoken1")),
    (
        "region",
        Test(
            "crates/builder/src/run/context.rs",
            "access_and_polling_options_reach_the_sdk_and_the_poller",
        ),
    ),
    (
        "profile",
        Test(
            "crates/builder/src/run/context.rs",
            "access_and_polling_options_reach_the_sdk_and_the_poller",
        ),
    ),
    (
        "shared_credentials_file",
        Test(
            "crates/builder/src/run/context.rs",
            "access_and_polling_options_reach_the_sdk_and_the_poller",
        ),
    ),
    (
        "custom_endpoint_ec2",
        Test(
            "crates/builder/src/run/context.rs",
            "access_and_polling_options_reach_the_sdk_and_the_poller",
        ),
    ),
    (
        "max_retries",
        Test(
            "crates/builder/src/run/context.rs",
            "access_and_polling_options_reach_the_sdk_and_the_poller",
        ),
    ),
    (
        "aws_polling",
        Test(
            "crates/builder/src/run/context.rs",
            "access_and_polling_options_reach_the_sdk_and_the_poller",
        ),
    ),
    (
        "aws_polling.delay_seconds",
        Test(
            "crates/builder/src/run/context.rs",
            "access_and_polling_options_reach_the_sdk_and_the_poller",
        ),
    ),
    (
        "aws_polling.max_attempts",
        Test(
            "crates/builder/src/run/context.rs",
            "access_and_polling_options_reach_the_sdk_and_the_poller",
        ),
    ),
    (
        "assume_role",
        Request(
            1,
            "AssumeRole",
            "RoleArn=arn:aws:iam::123456789012:role/probe",
        ),
    ),
    (
        "assume_role.role_arn",
        Request(
            1,
            "AssumeRole",
            "RoleArn=arn:aws:iam::123456789012:role/probe",
        ),
    ),
    (
        "assume_role.session_name",
        Request(1, "AssumeRole", "RoleSessionName=probe-session"),
    ),
    (
        "assume_role.external_id",
        Request(1, "AssumeRole", "ExternalId=probe-ext"),
    ),
    (
        "assume_role.duration_seconds",
        Request(1, "AssumeRole", "DurationSeconds=1800"),
    ),
    (
        "assume_role.policy",
        Request(1, "AssumeRole", "Policy={\"Version\":\"2012-10-17\""),
    ),
    (
        "assume_role.policy_arns",
        Request(
            1,
            "AssumeRole",
            "PolicyArns.member.1.arn=arn:aws:iam::aws:policy/ReadOnlyAccess",
        ),
    ),
    (
        "assume_role.tags",
        Request(1, "AssumeRole", "Tags.member.1.Key=team"),
    ),
    // The image and its attributes.
    ("ami_name", Request(0, "CreateImage", "Name=UNIQUE")),
    (
        "ami_description",
        Request(0, "CreateImage", "Description=options probe ami-"),
    ),
    (
        "ami_users",
        Request(
            0,
            "ModifyImageAttribute",
            "LaunchPermission.Add.1.UserId=210987654321",
        ),
    ),
    (
        "ami_groups",
        Request(0, "ModifyImageAttribute", "Group=all"),
    ),
    (
        "ami_org_arns",
        Request(
            0,
            "ModifyImageAttribute",
            "OrganizationArn=arn:aws:organizations::210987654321:organization/o-probe1",
        ),
    ),
    (
        "ami_ou_arns",
        Request(
            0,
            "ModifyImageAttribute",
            "OrganizationalUnitArn=arn:aws:organizations::210987654321:ou/o-probe1/ou-probe-1",
        ),
    ),
    (
        "ami_product_codes",
        Request(0, "ModifyImageAttribute", "ProductCode.1=probecode1"),
    ),
    (
        "imds_support",
        Request(0, "ModifyImageAttribute", "ImdsSupport.Value=v2.0"),
    ),
    (
        "deprecate_at",
        Request(
            0,
            "EnableImageDeprecation",
            "DeprecateAt=2031-01-02T03:04:05Z",
        ),
    ),
    (
        "deregistration_protection",
        Request(0, "EnableImageDeregistrationProtection", "ImageId=ami-"),
    ),
    (
        "deregistration_protection.enabled",
        Request(0, "EnableImageDeregistrationProtection", "ImageId=ami-"),
    ),
    (
        "deregistration_protection.with_cooldown",
        Request(
            0,
            "EnableImageDeregistrationProtection",
            "WithCooldown=false",
        ),
    ),
    (
        "ami_regions",
        Request(0, "CopyImage", "SourceRegion=us-east-1"),
    ),
    (
        "snapshot_copy_duration_minutes",
        Request(0, "CopyImage", "SnapshotCopyCompletionDurationMinutes=15"),
    ),
    (
        "snapshot_users",
        Request(
            0,
            "ModifySnapshotAttribute",
            "CreateVolumePermission.Add.1.UserId=210987654322",
        ),
    ),
    (
        "snapshot_groups",
        Request(0, "ModifySnapshotAttribute", "Group=all"),
    ),
    (
        "force_deregister",
        Request(0, "DeregisterImage", "ImageId=PRE_AMI"),
    ),
    (
        "force_delete_snapshot",
        Request(0, "DeleteSnapshot", "SnapshotId=PRE_SNAPSHOT"),
    ),
    ("skip_create_ami", NoRequest(2, "CreateImage")),
    ("tags", Request(0, "CreateImage", "Key=probe-tag")),
    ("tag", Spelling("tags")),
    ("tag.key", Request(1, "CreateImage", "Key=probe-tag-block")),
    ("tag.value", Request(1, "CreateImage", "Value=tb")),
    (
        "snapshot_tags",
        Request(0, "CreateImage", "Key=probe-snap-tag"),
    ),
    ("snapshot_tag", Spelling("snapshot_tags")),
    (
        "snapshot_tag.key",
        Request(1, "CreateImage", "Key=probe-snap-block"),
    ),
    ("snapshot_tag.value", Request(1, "CreateImage", "Value=sb")),
    (
        "ena_support",
        Request(0, "ModifyInstanceAttribute", "EnaSupport.Value=true"),
    ),
    ("enhanced_networking", Spelling("ena_support")),
    (
        "sriov_support",
        Request(0, "ModifyInstanceAttribute", "SriovNetSupport.Value=simple"),
    ),
    ("encrypt_boot", Request(1, "CopyImage", "Encrypted=true")),
    (
        "kms_key_id",
        Request(1, "CopyImage", "KmsKeyId=alias/probe-build"),
    ),
    (
        "region_kms_key_ids",
        Request(1, "CopyImage", "KmsKeyId=alias/probe-copy"),
    ),
    (
        "ami_block_device_mappings",
        Request(0, "CreateImage", "BlockDeviceMapping.1.DeviceName=/dev/sdg"),
    ),
    (
        "ami_block_device_mappings.device_name",
        Request(0, "CreateImage", "DeviceName=/dev/sdh"),
    ),
    (
        "ami_block_device_mappings.volume_size",
        Request(0, "CreateImage", "Ebs.VolumeSize=9"),
    ),
    (
        "ami_block_device_mappings.volume_type",
        Request(0, "CreateImage", "Ebs.VolumeType=io2"),
    ),
    (
        "ami_block_device_mappings.iops",
        Request(0, "CreateImage", "Ebs.Iops=3200"),
    ),
    (
        "ami_block_device_mappings.throughput",
        Request(0, "CreateImage", "Ebs.Throughput=145"),
    ),
    (
        "ami_block_device_mappings.delete_on_termination",
        Request(0, "CreateImage", "Ebs.DeleteOnTermination=true"),
    ),
    (
        "ami_block_device_mappings.encrypted",
        Request(0, "CreateImage", "Ebs.Encrypted=false"),
    ),
    (
        "ami_block_device_mappings.kms_key_id",
        Request(0, "CreateImage", "Ebs.KmsKeyId=alias/probe-ami"),
    ),
    (
        "ami_block_device_mappings.snapshot_id",
        Request(0, "CreateImage", "Ebs.SnapshotId=snap-0probe2"),
    ),
    (
        "ami_block_device_mappings.no_device",
        Request(0, "CreateImage", "NoDevice="),
    ),
    (
        "ami_block_device_mappings.virtual_name",
        Request(0, "CreateImage", "VirtualName=ephemeral0"),
    ),
    // The builder instance and its network.
    ("source_ami", Request(0, "RunInstances", "ImageId=ami-")),
    (
        "source_ami_filter",
        Request(1, "DescribeImages", "Filter.1.Name=virtualization-type"),
    ),
    (
        "source_ami_filter.filters",
        Request(1, "DescribeImages", "Filter.1.Value.1=hvm"),
    ),
    (
        "source_ami_filter.owners",
        Request(1, "DescribeImages", "Owner.1=amazon"),
    ),
    (
        "source_ami_filter.include_deprecated",
        Request(1, "DescribeImages", "IncludeDeprecated=true"),
    ),
    (
        "source_ami_filter.most_recent",
        Succeeds(
            1,
            "the filter matches many of the lab's images; without most_recent the bake stops with \"more than one result\"",
        ),
    ),
    (
        "instance_type",
        Request(1, "RunInstances", "InstanceType=m5.large"),
    ),
    (
        "iam_instance_profile",
        Request(
            2,
            "RunInstances",
            "IamInstanceProfile.Name=bakery-lab-profile",
        ),
    ),
    ("vpc_id", Request(0, "CreateSecurityGroup", "VpcId=VPC")),
    ("subnet_id", Request(0, "RunInstances", "SubnetId=SUBNET")),
    (
        "vpc_filter",
        Request(1, "DescribeVpcs", "Filter.1.Name=isDefault"),
    ),
    (
        "vpc_filter.filters",
        Request(1, "DescribeVpcs", "Filter.1.Value.1=true"),
    ),
    ("vpc_filter.filter", Spelling("vpc_filter.filters")),
    ("vpc_filter.filter.name", Spelling("vpc_filter.filters")),
    ("vpc_filter.filter.value", Spelling("vpc_filter.filters")),
    (
        "subnet_filter",
        Request(1, "DescribeSubnets", "Filter.1.Name=default-for-az"),
    ),
    (
        "subnet_filter.filters",
        Request(1, "DescribeSubnets", "Filter.1.Value.1=true"),
    ),
    ("subnet_filter.filter", Spelling("subnet_filter.filters")),
    (
        "subnet_filter.filter.name",
        Spelling("subnet_filter.filters"),
    ),
    (
        "subnet_filter.filter.value",
        Spelling("subnet_filter.filters"),
    ),
    (
        "subnet_filter.most_free",
        Succeeds(
            1,
            "the filter matches the default VPC's subnet in every zone; without most_free or random the bake stops",
        ),
    ),
    (
        "subnet_filter.random",
        Succeeds(
            2,
            "the filter matches every subnet of the default VPC; without most_free or random the bake stops",
        ),
    ),
    (
        "security_group_ids",
        Request(2, "RunInstances", "SecurityGroupId.1=GROUP"),
    ),
    ("security_group_id", Spelling("security_group_ids")),
    (
        "security_group_filter",
        Request(1, "DescribeSecurityGroups", "Filter.1.Name=group-name"),
    ),
    (
        "security_group_filter.filters",
        Request(1, "DescribeSecurityGroups", "Filter.1.Value.1=default"),
    ),
    (
        "security_group_filter.filter",
        Spelling("security_group_filter.filters"),
    ),
    (
        "security_group_filter.filter.name",
        Spelling("security_group_filter.filters"),
    ),
    (
        "security_group_filter.filter.value",
        Spelling("security_group_filter.filters"),
    ),
    (
        "ebs_optimized",
        Request(0, "RunInstances", "EbsOptimized=true"),
    ),
    (
        "shutdown_behavior",
        Request(
            0,
            "RunInstances",
            "InstanceInitiatedShutdownBehavior=terminate",
        ),
    ),
    ("shutdown_behaviour", Spelling("shutdown_behavior")),
    (
        "user_data",
        Request(0, "RunInstances", "UserData=cHJvYmUtdXNlci1kYXRh"),
    ),
    (
        "user_data_file",
        Request(2, "RunInstances", "UserData=cHJvYmUtdXNlci1kYXRhLWZpbGU="),
    ),
    (
        "associate_public_ip_address",
        Request(
            0,
            "RunInstances",
            "NetworkInterface.1.AssociatePublicIpAddress=true",
        ),
    ),
    (
        "availability_zone",
        Request(0, "RunInstances", "Placement.AvailabilityZone=us-east-1a"),
    ),
    (
        "placement",
        Request(0, "RunInstances", "Placement.Tenancy=host"),
    ),
    (
        "placement.tenancy",
        Request(0, "RunInstances", "Placement.Tenancy=host"),
    ),
    (
        "placement.host_id",
        Request(0, "RunInstances", "Placement.HostId=h-0probe1"),
    ),
    (
        "placement.host_resource_group_arn",
        Request(
            1,
            "RunInstances",
            "Placement.HostResourceGroupArn=arn:aws:resource-groups:us-east-1:210987654321:group/probe-hosts",
        ),
    ),
    (
        "tenancy",
        Request(1, "RunInstances", "Placement.Tenancy=host"),
    ),
    (
        "capacity_reservation_id",
        Request(
            0,
            "RunInstances",
            "CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationId=cr-0probe1",
        ),
    ),
    (
        "capacity_reservation_group_arn",
        Request(
            1,
            "RunInstances",
            "CapacityReservationResourceGroupArn=arn:aws:resource-groups:us-east-1:210987654321:group/probe-crg",
        ),
    ),
    (
        "capacity_reservation_preference",
        Test(
            "crates/builder/src/amazon_ebs/run_instance.rs",
            "capacity_reservation_preference_is_sent_alone",
        ),
    ),
    (
        "license_specifications",
        Request(
            0,
            "RunInstances",
            "LicenseSpecification.1.LicenseConfigurationArn=arn:aws:license-manager:us-east-1:210987654321:license-configuration:lic-probe1",
        ),
    ),
    (
        "license_specifications.license_configuration_request",
        Spelling("license_specifications"),
    ),
    (
        "license_specifications.license_configuration_request.license_configuration_arn",
        Spelling("license_specifications"),
    ),
    (
        "enable_unlimited_credits",
        Request(
            0,
            "RunInstances",
            "CreditSpecification.CpuCredits=unlimited",
        ),
    ),
    ("enable_t2_unlimited", Spelling("enable_unlimited_credits")),
    (
        "enable_nitro_enclave",
        Request(1, "RunInstances", "EnclaveOptions.Enabled=true"),
    ),
    (
        "disable_stop_instance",
        Output(2, "Automatic instance stop disabled"),
    ),
    (
        "metadata_options",
        Request(0, "RunInstances", "MetadataOptions.HttpEndpoint=enabled"),
    ),
    (
        "metadata_options.http_endpoint",
        Request(0, "RunInstances", "MetadataOptions.HttpEndpoint=enabled"),
    ),
    (
        "metadata_options.http_tokens",
        Request(0, "RunInstances", "MetadataOptions.HttpTokens=required"),
    ),
    (
        "metadata_options.http_put_response_hop_limit",
        Request(
            0,
            "RunInstances",
            "MetadataOptions.HttpPutResponseHopLimit=3",
        ),
    ),
    (
        "metadata_options.instance_metadata_tags",
        Request(
            0,
            "RunInstances",
            "MetadataOptions.InstanceMetadataTags=enabled",
        ),
    ),
    ("run_tags", Request(0, "RunInstances", "Key=probe-run")),
    ("run_tag", Spelling("run_tags")),
    (
        "run_tag.key",
        Request(1, "RunInstances", "Key=probe-run-block"),
    ),
    ("run_tag.value", Request(1, "RunInstances", "Value=rb")),
    (
        "run_volume_tags",
        Request(0, "RunInstances", "Key=probe-vol"),
    ),
    ("run_volume_tag", Spelling("run_volume_tags")),
    (
        "run_volume_tag.name",
        Request(1, "RunInstances", "Key=probe-vol-block"),
    ),
    (
        "run_volume_tag.value",
        Request(1, "RunInstances", "Value=vb"),
    ),
    (
        "launch_block_device_mappings",
        Request(
            0,
            "RunInstances",
            "BlockDeviceMapping.1.DeviceName=/dev/sdf",
        ),
    ),
    (
        "launch_block_device_mappings.device_name",
        Request(0, "RunInstances", "DeviceName=/dev/sdf"),
    ),
    (
        "launch_block_device_mappings.volume_size",
        Request(0, "RunInstances", "Ebs.VolumeSize=7"),
    ),
    (
        "launch_block_device_mappings.volume_type",
        Request(0, "RunInstances", "Ebs.VolumeType=gp3"),
    ),
    (
        "launch_block_device_mappings.iops",
        Request(0, "RunInstances", "Ebs.Iops=3100"),
    ),
    (
        "launch_block_device_mappings.throughput",
        Request(0, "RunInstances", "Ebs.Throughput=135"),
    ),
    (
        "launch_block_device_mappings.delete_on_termination",
        Request(0, "RunInstances", "Ebs.DeleteOnTermination=true"),
    ),
    (
        "launch_block_device_mappings.encrypted",
        Request(0, "RunInstances", "Ebs.Encrypted=true"),
    ),
    (
        "launch_block_device_mappings.kms_key_id",
        Request(0, "RunInstances", "Ebs.KmsKeyId=alias/probe-launch"),
    ),
    (
        "launch_block_device_mappings.snapshot_id",
        Request(1, "RunInstances", "Ebs.SnapshotId=SNAPSHOT"),
    ),
    // moto refuses an instance-store mapping in RunInstances (AWS takes it): the mapping itself is shown.
    (
        "launch_block_device_mappings.virtual_name",
        Test(
            "crates/builder/src/ec2.rs",
            "instance_store_and_no_device_mappings_carry_no_volume",
        ),
    ),
    (
        "launch_block_device_mappings.no_device",
        Request(1, "RunInstances", "BlockDeviceMapping.2.NoDevice="),
    ),
    // Spot.
    (
        "spot_price",
        Test(
            "tests/bake_spot.rs",
            "a_failed_spot_bake_with_instance_types_and_a_price_cleans_up_everything",
        ),
    ),
    (
        "spot_instance_types",
        Test(
            "tests/bake_spot.rs",
            "a_failed_spot_bake_with_instance_types_and_a_price_cleans_up_everything",
        ),
    ),
    (
        "spot_allocation_strategy",
        Test(
            "tests/bake_spot.rs",
            "a_spot_bake_produces_its_ami_and_leaves_no_instance_template_fleet_or_request",
        ),
    ),
    (
        "spot_tags",
        Test(
            "tests/bake_spot.rs",
            "a_spot_bake_produces_its_ami_and_leaves_no_instance_template_fleet_or_request",
        ),
    ),
    ("spot_tag", Spelling("spot_tags")),
    (
        "spot_tag.key",
        Test(
            "tests/bake_spot.rs",
            "a_spot_bake_produces_its_ami_and_leaves_no_instance_template_fleet_or_request",
        ),
    ),
    (
        "spot_tag.value",
        Test(
            "tests/bake_spot.rs",
            "a_spot_bake_produces_its_ami_and_leaves_no_instance_template_fleet_or_request",
        ),
    ),
    (
        "fleet_tags",
        Test(
            "tests/bake_spot.rs",
            "a_spot_bake_produces_its_ami_and_leaves_no_instance_template_fleet_or_request",
        ),
    ),
    ("fleet_tag", Spelling("fleet_tags")),
    (
        "fleet_tag.key",
        Test(
            "tests/bake_spot.rs",
            "a_spot_bake_produces_its_ami_and_leaves_no_instance_template_fleet_or_request",
        ),
    ),
    (
        "fleet_tag.value",
        Test(
            "tests/bake_spot.rs",
            "a_spot_bake_produces_its_ami_and_leaves_no_instance_template_fleet_or_request",
        ),
    ),
    // The connection.
    ("communicator", NoRequest(2, "CreateKeyPair")),
    (
        "ssh_username",
        Test(
            "crates/builder/src/amazon_ebs/connect.rs",
            "communicator_options_reach_the_ssh_client",
        ),
    ),
    (
        "ssh_port",
        Test(
            "crates/builder/src/amazon_ebs/connect.rs",
            "communicator_options_reach_the_ssh_client",
        ),
    ),
    (
        "ssh_pty",
        Succeeds(1, "its provisioner fails without a terminal (test -t 1)"),
    ),
    (
        "ssh_handshake_attempts",
        Test(
            "crates/builder/src/amazon_ebs/connect.rs",
            "communicator_options_reach_the_ssh_client",
        ),
    ),
    (
        "ssh_keep_alive_interval",
        Test(
            "crates/builder/src/amazon_ebs/connect.rs",
            "communicator_options_reach_the_ssh_client",
        ),
    ),
    (
        "pause_before_connecting",
        Test(
            "crates/builder/src/amazon_ebs/connect.rs",
            "communicator_options_reach_the_ssh_client",
        ),
    ),
    (
        "ssh_bastion_host",
        Test(
            "crates/builder/src/amazon_ebs/connect.rs",
            "communicator_options_reach_the_ssh_client",
        ),
    ),
    (
        "ssh_bastion_port",
        Test(
            "crates/builder/src/amazon_ebs/connect.rs",
            "communicator_options_reach_the_ssh_client",
        ),
    ),
    (
        "ssh_bastion_username",
        Test(
            "crates/builder/src/amazon_ebs/connect.rs",
            "communicator_options_reach_the_ssh_client",
        ),
    ),
    (
        "ssh_bastion_password",
        Test(
            "crates/builder/src/amazon_ebs/connect.rs",
            "communicator_options_reach_the_ssh_client",
        ),
    ),
    (
        "ssh_bastion_private_key_file",
        Test(
            "crates/builder/src/amazon_ebs/connect.rs",
            "communicator_options_reach_the_ssh_client",
        ),
    ),
    (
        "ssh_bastion_agent_auth",
        Test(
            "crates/builder/src/amazon_ebs/connect.rs",
            "communicator_options_reach_the_ssh_client",
        ),
    ),
    (
        "ssh_timeout",
        Test(
            "tests/bake_lab.rs",
            "ssh_never_reachable_times_out_and_cleans_up",
        ),
    ),
    ("ssh_wait_timeout", Spelling("ssh_timeout")),
    (
        "ssh_host",
        Test(
            "crates/builder/src/amazon_ebs/security_group.rs",
            "the_default_is_never_the_world",
        ),
    ),
    (
        "ssh_interface",
        Test(
            "crates/builder/src/amazon_ebs/security_group.rs",
            "the_default_is_never_the_world",
        ),
    ),
    ("ssh_private_ip", Spelling("ssh_interface")),
    (
        "ssh_private_key_file",
        Test(
            "crates/builder/src/amazon_ebs/key_pair.rs",
            "the_login_follows_the_template",
        ),
    ),
    (
        "ssh_keypair_name",
        Test(
            "crates/builder/src/amazon_ebs/key_pair.rs",
            "the_login_follows_the_template",
        ),
    ),
    (
        "ssh_agent_auth",
        Test(
            "crates/builder/src/amazon_ebs/key_pair.rs",
            "the_login_follows_the_template",
        ),
    ),
    (
        "ssh_password",
        Test(
            "crates/builder/src/amazon_ebs/key_pair.rs",
            "the_login_follows_the_template",
        ),
    ),
    (
        "ssh_clear_authorized_keys",
        Test(
            "crates/builder/src/amazon_ebs/provision.rs",
            "clear_commands_remove_exactly_the_temporary_key",
        ),
    ),
    (
        "temporary_key_pair_type",
        Request(0, "CreateKeyPair", "KeyType=ed25519"),
    ),
    (
        "temporary_key_pair_name",
        Request(0, "CreateKeyPair", "KeyName=probe-key-UNIQUE"),
    ),
    (
        "temporary_security_group_source_cidrs",
        Request(0, "AuthorizeSecurityGroupIngress", "CidrIp=127.0.0.1/32"),
    ),
    (
        "temporary_security_group_source_cidr",
        Spelling("temporary_security_group_source_cidrs"),
    ),
    // The temporary instance profile: its role's inline policy is the document (IAM's request).
    (
        "temporary_iam_instance_profile_policy_document",
        Request(
            0,
            "PutRolePolicy",
            r#"PolicyDocument={"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["*"]}]}"#,
        ),
    ),
    (
        "temporary_iam_instance_profile_policy_document.Version",
        Request(0, "PutRolePolicy", r#"{"Version":"2012-10-17","#),
    ),
    (
        "temporary_iam_instance_profile_policy_document.Statement",
        Request(0, "PutRolePolicy", r#""Statement":[{"#),
    ),
    (
        "temporary_iam_instance_profile_policy_document.Statement.Effect",
        Request(0, "PutRolePolicy", r#""Effect":"Allow""#),
    ),
    (
        "temporary_iam_instance_profile_policy_document.Statement.Action",
        Request(0, "PutRolePolicy", r#""Action":["s3:GetObject"]"#),
    ),
    (
        "temporary_iam_instance_profile_policy_document.Statement.Resource",
        Request(0, "PutRolePolicy", r#""Resource":["*"]"#),
    ),
];

/// A lab template for `bake` of [`BAKES`].
fn probe_template(ami_name: &str, bake: &Bake, members: &str) -> String {
    let source = if bake.source_ami {
        r#""source_ami": "{{user `lab_source_ami`}}","#
    } else {
        ""
    };
    let instance_type = if members.contains("\"instance_type\"") {
        ""
    } else {
        r#""instance_type": "t3.micro","#
    };
    format!(
        r#"{{
  "variables": {{ "lab_endpoint": "", "lab_ssh_host": "", "lab_ssh_port": "22", "lab_source_ami": "" }},
  "builders": [{{
    "type": "amazon-ebs", "region": "us-east-1", {source} {instance_type}
    "ssh_username": "admin", "ssh_host": "{{{{user `lab_ssh_host`}}}}", "ssh_port": "{{{{user `lab_ssh_port`}}}}",
    "ami_name": "{ami_name}"{members}
  }}],
  "provisioners": {}
}}"#,
        bake.provisioners
    )
}

/// A form body, decoded: `Key=value` pairs joined by `&`.
fn decode(body: &str) -> String {
    form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The options the support table covers: its plain entries and everything nested under them
/// (`name=value` entries refuse one value; the option itself stays applied).
fn listed(option: &str) -> bool {
    NOT_APPLIED.iter().any(|n| {
        !n.option.contains('=')
            && (option == n.option || option.starts_with(&format!("{}.", n.option)))
    })
}

#[test]
fn every_accepted_option_is_applied_or_listed_with_a_reason() {
    let accepted = support::accepted_options();
    let applied: BTreeSet<&str> = APPLIED.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        applied.len(),
        APPLIED.len(),
        "an option is in APPLIED twice"
    );
    let missing: Vec<&String> = accepted
        .iter()
        .filter(|o| !listed(o) && !applied.contains(o.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "accepted options neither applied (with evidence) nor in the support table: {missing:?}"
    );
    for (option, evidence) in APPLIED {
        assert!(
            accepted.contains(*option),
            "{option} is not an amazon-ebs option"
        );
        assert!(
            !listed(option),
            "{option} is both applied and in the support table"
        );
        match evidence {
            Request(..) | Header(..) | NoRequest(..) | Output(..) | Succeeds(..) => {
                // The bake sets the option (its last name part).
                let bake = evidence.bake().unwrap();
                let leaf = option.rsplit('.').next().unwrap();
                let template = probe_template("UNIQUE", &BAKES[bake], BAKES[bake].members);
                assert!(
                    template.contains(&format!("\"{leaf}\"")),
                    "{option}: bake {bake} does not set it"
                );
            }
            Test(file, function) => {
                let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
                let source = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{option}: {}: {e}", path.display()));
                let start = source
                    .find(&format!("fn {function}("))
                    .unwrap_or_else(|| panic!("{option}: no fn {function} in {file}"));
                // The function's body ends at the first closing brace at its own indentation.
                let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
                let indent = &source[line_start..start];
                let indent = &indent[..indent.len() - indent.trim_start().len()];
                let body = &source[start..];
                let end = body.find(&format!("\n{indent}}}\n")).unwrap_or(body.len());
                let body = &body[..end];
                let leaf = option.rsplit('.').next().unwrap();
                assert!(
                    body.contains(leaf),
                    "{option}: {file} fn {function} does not set it"
                );
            }
            Spelling(canonical) => {
                assert!(
                    applied.contains(canonical),
                    "{option}: {canonical} is not applied"
                );
            }
        }
    }
}

/// Percent-decoded request bodies of `action` recorded since the last reset.
fn sent(lab: &Lab, action: &str) -> Vec<String> {
    crate::common::bodies(lab, action)
        .iter()
        .map(|b| decode(b))
        .collect()
}

/// Every header value of every request recorded since the last reset, one string each.
fn headers(lab: &Lab) -> Vec<String> {
    let text = std::fs::read_to_string(lab.recording()).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["headers"].as_object().map(|h| format!("{h:?}")))
        .collect()
}

/// What the default VPC gives the bakes: its id, a subnet and its default group.
async fn default_network(c: &bakery_core::aws::Clients) -> (String, String, String) {
    use aws_sdk_ec2::types::Filter;
    let vpcs = c
        .ec2
        .describe_vpcs()
        .filters(Filter::builder().name("isDefault").values("true").build())
        .send()
        .await
        .unwrap();
    let vpc = vpcs.vpcs()[0].vpc_id().unwrap().to_string();
    let subnets = c
        .ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(&vpc).build())
        .send()
        .await
        .unwrap();
    let subnet = subnets.subnets()[0].subnet_id().unwrap().to_string();
    let groups = c
        .ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(&vpc).build())
        .filters(
            Filter::builder()
                .name("group-name")
                .values("default")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let group = groups.security_groups()[0].group_id().unwrap().to_string();
    (vpc, subnet, group)
}

/// An AMI named `name` made outside bake, for `force_deregister`; with its snapshot.
async fn existing_ami(c: &bakery_core::aws::Clients, lab: &Lab, name: &str) -> (String, String) {
    let ami = crate::common::register_ami_named(lab, c, name).await;
    let described = c
        .ec2
        .describe_images()
        .image_ids(&ami)
        .send()
        .await
        .unwrap();
    let snapshot = described.images()[0]
        .block_device_mappings()
        .iter()
        .find_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
        .expect("the AMI has a snapshot")
        .to_string();
    (ami, snapshot)
}

/// The three bakes on the lab: each sets its options and succeeds, and every option's evidence holds.
#[tokio::test(flavor = "multi_thread")]
async fn applied_options_reach_the_requests_they_change() {
    let lab = Lab::shared();
    let _serial = crate::common::SERIAL.lock().await;
    let c = clients(lab).await;
    // A snapshot for a launch mapping to restore (moto checks it exists).
    let volume = c
        .ec2
        .create_volume()
        .availability_zone(format!("{}a", lab.region()))
        .size(1)
        .send()
        .await
        .unwrap();
    let volume_id = volume.volume_id().unwrap().to_string();
    let snapshot = c
        .ec2
        .create_snapshot()
        .volume_id(&volume_id)
        .send()
        .await
        .unwrap();
    let snapshot_id = snapshot.snapshot_id().unwrap().to_string();
    let (vpc, subnet, group) = default_network(&c).await;
    let vars = lab.var_file();
    let mut failures = Vec::new();
    for (index, bake) in BAKES.iter().enumerate() {
        let s = Scratch::new(lab, "options");
        s.write("user-data.txt", "probe-user-data-file");
        let name = lab.unique("options");
        let (pre_ami, pre_snapshot) = if index == 0 {
            existing_ami(&c, lab, &name).await
        } else {
            Default::default()
        };
        let fill = |t: &str| {
            // PRE_SNAPSHOT before SNAPSHOT, which it contains.
            t.replace("PRE_AMI", &pre_ami)
                .replace("PRE_SNAPSHOT", &pre_snapshot)
                .replace("UNIQUE", &name)
                .replace("SNAPSHOT", &snapshot_id)
                .replace("VPC", &vpc)
                .replace("SUBNET", &subnet)
                .replace("GROUP", &group)
        };
        let tpl = s.write("t.json", &probe_template(&name, bake, &fill(bake.members)));
        lab.reset_request_counts();
        let args = ["-var-file", vars.to_str().unwrap(), tpl.to_str().unwrap()];
        let (code, shown) = if bake.members.contains("\"disable_stop_instance\"") {
            // bake waits for the instance to stop, as Packer does: here the test stops it, as a
            // provisioner or the user would.
            let mut running = Running::spawn(s.bake(lab, lab.moto_url(), &args));
            running.wait_for("Automatic instance stop disabled");
            let id = running
                .seen
                .iter()
                .find_map(|l| l.split("Instance ID: ").nth(1))
                .expect("bake shows the instance id")
                .trim()
                .to_string();
            c.ec2
                .stop_instances()
                .instance_ids(&id)
                .send()
                .await
                .unwrap();
            running.finish()
        } else {
            let out = s.run(lab, lab.moto_url(), &args);
            (out.status.code(), text(&out))
        };
        for (option, evidence) in APPLIED.iter().filter(|(_, e)| e.bake() == Some(index)) {
            let held = match evidence {
                Request(_, action, fragment) => {
                    let fragment = fill(fragment);
                    sent(lab, action).iter().any(|b| b.contains(&fragment))
                }
                Header(_, text) => headers(lab).iter().any(|h| h.contains(text)),
                NoRequest(_, action) => sent(lab, action).is_empty(),
                Output(_, said) => shown.contains(said),
                Succeeds(_, why) => {
                    if code != Some(0) {
                        failures.push(format!(
                            "bake {index}: {option} needs the bake to succeed: {why}"
                        ));
                    }
                    true
                }
                Test(..) | Spelling(_) => unreachable!("not a bake's evidence"),
            };
            if !held {
                failures.push(format!("bake {index}: {option}: {evidence:?}"));
            }
        }
        crate::common::remove_amis_named(&c, &name).await;
        assert_eq!(code, Some(0), "bake {index}: {shown}");
    }
    c.ec2
        .delete_snapshot()
        .snapshot_id(&snapshot_id)
        .send()
        .await
        .unwrap();
    c.ec2
        .delete_volume()
        .volume_id(&volume_id)
        .send()
        .await
        .unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    crate::common::assert_nothing_left(&c, "after the option bakes").await;
}

/// `temporary_iam_instance_profile_policy_document`: before the launch, bake creates an IAM role under
/// `/bakery/` that EC2 may assume, puts the document as its inline policy, creates an instance profile of
/// the same name holding it (both tagged as the run's), launches the builder with that profile, and after
/// the instance is terminated removes the role from the profile, the profile, the policy and the role.
#[tokio::test(flavor = "multi_thread")]
async fn a_temporary_instance_profile_is_created_launched_with_and_removed() {
    use bakery_lab::RequestKind;
    let lab = Lab::shared();
    let _serial = crate::common::SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "iam-profile");
    let name = lab.unique("iam-profile");
    let document = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "ssm:GetParameter"], "Resource": ["*"]}, {"Effect": "Deny", "Action": ["ec2:TerminateInstances"], "Resource": ["arn:aws:ec2:*:*:instance/*"]}]}"#;
    let bake = Bake {
        members: "",
        provisioners: r#"[{"type":"shell","inline":["true"]}]"#,
        source_ami: true,
    };
    let members = format!(
        r#", "skip_create_ami": true, "temporary_iam_instance_profile_policy_document": {document}"#
    );
    let tpl = s.write("t.json", &probe_template(&name, &bake, &members));
    lab.reset_request_counts();
    let out = s.run_with_lab_vars(lab, &tpl);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    let profile = shown
        .lines()
        .find_map(|l| {
            l.split("Creating temporary instance profile for this instance: ")
                .nth(1)
        })
        .expect("bake names the temporary profile")
        .trim()
        .to_string();
    assert!(profile.starts_with("bakery_"), "{profile}");
    // The role: under /bakery/, EC2 may assume it, tagged as this run's temporary role.
    let create_role = sent(lab, "CreateRole");
    assert_eq!(create_role.len(), 1, "{create_role:?}");
    let role = &create_role[0];
    assert!(role.contains(&format!("RoleName={profile}&")), "{role}");
    assert!(role.contains("Path=/bakery/"), "{role}");
    let trust = role
        .split('&')
        .find_map(|kv| kv.strip_prefix("AssumeRolePolicyDocument="))
        .expect("a trust policy");
    let trust: serde_json::Value = serde_json::from_str(trust).unwrap();
    assert_eq!(
        trust["Statement"][0]["Principal"]["Service"], "ec2.amazonaws.com",
        "{trust}"
    );
    assert_eq!(trust["Statement"][0]["Action"], "sts:AssumeRole", "{trust}");
    assert!(role.contains("=temporary-iam-role"), "{role}");
    assert!(role.contains("=bakery:run-id"), "{role}");
    // Its inline policy is the template's document.
    let put = sent(lab, "PutRolePolicy");
    assert_eq!(put.len(), 1, "{put:?}");
    let policy = put[0]
        .split('&')
        .find_map(|kv| kv.strip_prefix("PolicyDocument="))
        .expect("a policy document");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(policy).unwrap(),
        serde_json::from_str::<serde_json::Value>(document).unwrap()
    );
    assert!(
        put[0].contains(&format!("RoleName={profile}&")),
        "{}",
        put[0]
    );
    // The profile, holding the role, tagged as this run's temporary profile.
    let create_profile = sent(lab, "CreateInstanceProfile");
    assert_eq!(create_profile.len(), 1, "{create_profile:?}");
    assert!(
        create_profile[0].contains(&format!("InstanceProfileName={profile}")),
        "{create_profile:?}"
    );
    assert!(create_profile[0].contains("Path=/bakery/"));
    assert!(create_profile[0].contains("=temporary-instance-profile"));
    let added = sent(lab, "AddRoleToInstanceProfile");
    assert!(
        added
            .iter()
            .any(|b| b.contains(&format!("RoleName={profile}"))),
        "{added:?}"
    );
    // The builder was launched with it, and moto associated it with the instance.
    let run = sent(lab, "RunInstances");
    assert!(
        run.iter()
            .any(|b| b.contains(&format!("IamInstanceProfile.Name={profile}"))),
        "{run:?}"
    );
    let id = shown
        .lines()
        .find_map(|l| l.split("Instance ID: ").nth(1))
        .expect("bake shows the instance id")
        .trim()
        .to_string();
    let described = c
        .ec2
        .describe_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    let instance = &described.reservations()[0].instances()[0];
    if let Some(arn) = instance.iam_instance_profile().and_then(|p| p.arn()) {
        assert!(arn.ends_with(&format!("/{profile}")), "{arn}");
    }
    // IAM's requests reached moto as IAM's (SigV4 service `iam`).
    let counts = lab.request_counts_by_service();
    let iam = |action: &str| {
        counts
            .get(&RequestKind {
                service: "iam".into(),
                action: action.into(),
            })
            .copied()
            .unwrap_or(0)
    };
    // (At least once: under the realism layer a throttled request is counted, then sent again.)
    assert!(iam("CreateRole") >= 1, "{counts:?}");
    assert!(iam("CreateInstanceProfile") >= 1, "{counts:?}");
    assert!(iam("DeleteRole") >= 1, "{counts:?}");
    assert!(iam("DeleteInstanceProfile") >= 1, "{counts:?}");
    // Removed after the instance was terminated: role out of the profile, profile, policy, role.
    // The recording's bodies, in the order moto received them.
    let recording: Vec<String> = std::fs::read_to_string(lab.recording())
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let body = v["body"].as_str()?.to_string();
            if v["body_encoded"].as_bool() == Some(true) {
                String::from_utf8(aws_smithy_types::base64::decode(&body).ok()?).ok()
            } else {
                Some(body)
            }
        })
        .collect();
    let removal = [
        "TerminateInstances",
        "RemoveRoleFromInstanceProfile",
        "DeleteInstanceProfile",
        "DeleteRolePolicy",
        "DeleteRole",
    ];
    let positions: Vec<Option<usize>> = removal
        .iter()
        .map(|a| {
            recording
                .iter()
                .position(|b| b.contains(&format!("Action={a}&")))
        })
        .collect();
    assert!(
        positions.iter().all(Option::is_some) && positions.windows(2).all(|w| w[0] < w[1]),
        "removal calls {removal:?} at {positions:?}"
    );
    // Nothing left: IAM says both are gone, and the leftover count (which lists /bakery/) agrees.
    let role_now = c.iam.get_role().role_name(&profile).send().await;
    assert!(role_now.is_err(), "the role is left: {role_now:?}");
    let profile_now = c
        .iam
        .get_instance_profile()
        .instance_profile_name(&profile)
        .send()
        .await;
    assert!(profile_now.is_err(), "the profile is left: {profile_now:?}");
    crate::common::assert_nothing_left(&c, "after the temporary instance profile bake").await;
}

/// A run SIGKILLed while its builder (launched with a temporary instance profile) provisions leaves the
/// role and the profile; `bake cleanup` finds them through the run's journal (region `global`) and
/// bakery's tags under `/bakery/`, and removes them with the instance, key pair and group.
#[tokio::test(flavor = "multi_thread")]
async fn bake_cleanup_removes_a_killed_runs_temporary_instance_profile() {
    use crate::common::Running;
    let lab = Lab::shared();
    let _serial = crate::common::SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "iam-kill");
    let name = lab.unique("iam-kill");
    let bake = Bake {
        members: "",
        provisioners: r#"[{"type":"shell","inline":["echo sleeping","sleep 60"]}]"#,
        source_ami: true,
    };
    let members = r#", "temporary_iam_instance_profile_policy_document": {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]}"#;
    let tpl = s.write("t.json", &probe_template(&name, &bake, members));
    let mut r = Running::spawn(s.bake_with_lab_vars(lab, &tpl));
    r.wait_for("sleeping");
    r.signal("-KILL");
    let (code, shown) = tokio::task::spawn_blocking(move || r.finish())
        .await
        .unwrap();
    assert_eq!(code, None, "killed by a signal");
    let profile = shown
        .lines()
        .find_map(|l| {
            l.split("Creating temporary instance profile for this instance: ")
                .nth(1)
        })
        .expect("bake names the temporary profile")
        .trim()
        .to_string();
    let left = crate::common::inventory(&c).await;
    assert_eq!(
        left["IAM roles"],
        std::slice::from_ref(&profile),
        "{left:?}"
    );
    assert_eq!(
        left["instance profiles"],
        std::slice::from_ref(&profile),
        "{left:?}"
    );
    let out = s.run(lab, lab.moto_url(), &["cleanup"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(&format!("removed instance profile {profile} (global)")),
        "{t}"
    );
    assert!(
        t.contains(&format!("removed IAM role {profile} (global)")),
        "{t}"
    );
    // The instance went first: the profile and role are removed after it.
    let at = |what: &str| t.find(what).unwrap_or(usize::MAX);
    assert!(
        at("removed instance i-") < at("removed instance profile"),
        "{t}"
    );
    crate::common::assert_nothing_left(&c, "after bake cleanup of the IAM run").await;
    let again = s.run(lab, lab.moto_url(), &["cleanup"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("nothing to clean up"),
        "{}",
        text(&again)
    );
}
