namespace embgeom { void pipeline_placeholder() {} }
