//! The regions SageMaker runs in, and where its built-in algorithms' images are.

use crate::error::{Error, ErrorKind, Result};

/// SageMaker's regions and the account of the built-in KMeans image in each,
/// from the SageMaker Python SDK's `image_uri_config/kmeans.json` (version 1).
const KMEANS_REGISTRIES: &[(&str, &str)] = &[
    ("af-south-1", "455444449433"),
    ("ap-east-1", "286214385809"),
    ("ap-northeast-1", "351501993468"),
    ("ap-northeast-2", "835164637446"),
    ("ap-northeast-3", "867004704886"),
    ("ap-south-1", "991648021394"),
    ("ap-south-2", "628508329040"),
    ("ap-southeast-1", "475088953585"),
    ("ap-southeast-2", "712309505854"),
    ("ap-southeast-3", "951798379941"),
    ("ap-southeast-4", "106583098589"),
    ("ca-central-1", "469771592824"),
    ("ca-west-1", "190319476487"),
    ("cn-north-1", "390948362332"),
    ("cn-northwest-1", "387376663083"),
    ("eu-central-1", "664544806723"),
    ("eu-central-2", "680994064768"),
    ("eu-north-1", "669576153137"),
    ("eu-south-1", "257386234256"),
    ("eu-south-2", "104374241257"),
    ("eu-west-1", "438346466558"),
    ("eu-west-2", "644912444149"),
    ("eu-west-3", "749696950732"),
    ("il-central-1", "898809789911"),
    ("me-central-1", "272398656194"),
    ("me-south-1", "249704162688"),
    ("sa-east-1", "855470959533"),
    ("us-east-1", "382416733822"),
    ("us-east-2", "404615174143"),
    ("us-gov-east-1", "237065988967"),
    ("us-gov-west-1", "226302683700"),
    ("us-west-1", "632365934929"),
    ("us-west-2", "174872318107"),
];

/// Whether SageMaker runs in `region` (a commercial, GovCloud or China
/// region), so a connection naming another without an `endpoint_url` is
/// refused before any request.
pub fn is_known_region(region: &str) -> bool {
    KMEANS_REGISTRIES.iter().any(|(r, _)| *r == region)
}

/// The image URI of built-in `algorithm` in `region`, as the SageMaker Python
/// SDK's `image_uris.retrieve(algorithm, region)` gives it: for `kmeans`,
/// `438346466558.dkr.ecr.eu-west-1.amazonaws.com/kmeans:1` in `eu-west-1`.
/// Other algorithms are [`Unsupported`](ErrorKind::Unsupported) (their
/// registries differ); an unknown region is [`InvalidInput`](ErrorKind::InvalidInput).
///
/// ```
/// use gust::hooks::sagemaker::builtin_algorithm_image;
/// assert_eq!(
///     builtin_algorithm_image("kmeans", "eu-west-1").unwrap(),
///     "438346466558.dkr.ecr.eu-west-1.amazonaws.com/kmeans:1"
/// );
/// ```
pub fn builtin_algorithm_image(algorithm: &str, region: &str) -> Result<String> {
    if algorithm != "kmeans" {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "sagemaker.builtin_algorithm_image",
            format!("gust knows the image of `kmeans` only, not of `{algorithm}`: give its URI"),
        ));
    }
    let account = KMEANS_REGISTRIES
        .iter()
        .find(|(r, _)| *r == region)
        .map(|(_, a)| *a)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "sagemaker.builtin_algorithm_image",
                format!("SageMaker does not run in region `{region}`"),
            )
        })?;
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Ok(format!("{account}.dkr.ecr.{region}.{domain}/kmeans:1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_regions() {
        assert_eq!(
            builtin_algorithm_image("kmeans", "us-east-1").unwrap(),
            "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"
        );
        assert_eq!(
            builtin_algorithm_image("kmeans", "cn-north-1").unwrap(),
            "390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/kmeans:1"
        );
        assert!(is_known_region("ap-northeast-2"));
        assert!(!is_known_region("eu-west-9"));
        assert!(!is_known_region("seoul"));
        let e = builtin_algorithm_image("kmeans", "eu-west-9").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = builtin_algorithm_image("xgboost", "us-east-1").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }
}
