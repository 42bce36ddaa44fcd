"""The timm scene classifier that tells the router which expert suits a grayscale photo."""
